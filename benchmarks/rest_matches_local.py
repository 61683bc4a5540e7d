"""Does a black-box run through TF Serving's REST API learn what the in-process run learns?

    python benchmarks/rest_matches_local.py --steps 40

Exports the recipe's backbone (`arnn export --backbone`'s SavedModel, at the recipe's frame),
answers TF Serving's REST ``:predict`` for it on 127.0.0.1 (a Python server over the loaded
export: this machine has no ``tensorflow_model_server``; `serving/docker-compose.yml` runs the
real one), trains the ``counting`` recipe black-box for ``--steps`` through that server and
again in process (`LocalQuery`) at the same seed, and prints one JSON line: both runs' test
accuracy and queries, and the largest difference between their programs.
"""

from __future__ import annotations

import argparse
import http.server
import json
import tempfile
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf

from arnn_tf.black_box import RestQuery
from arnn_tf.export import export_backbone
from arnn_tf.recipes import RECIPES
from arnn_tf.runs import train

MODEL = "backbone"


class Predict(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST ``/v1/models/backbone:predict`` over the server's ``serve``."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        frames = tf.constant(np.asarray(body["instances"], "float32"))
        logits = self.server.serve(frames=frames)["logits"].numpy()
        answer = json.dumps({"predictions": logits.tolist()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("runs/rest_matches_local"))
    args = parser.parse_args()
    recipe = RECIPES["counting"].replace(steps=args.steps, trainer="black_box")
    with tempfile.TemporaryDirectory() as exports:
        path = export_backbone(recipe.backbone, recipe.weights, exports,
                               input_size=recipe.frame_size)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Predict)
        server.serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            rest = train(recipe, args.out / "rest", query=RestQuery(url, MODEL), verbose=False)
        finally:
            server.shutdown()
    local = train(recipe, args.out / "local", verbose=False)
    programs = [np.load(args.out / run / "program" / "W.npy") for run in ("rest", "local")]
    print(json.dumps({
        "steps": args.steps,
        "rest": {"test_accuracy": rest["test_accuracy"], "queries": rest.get("queries")},
        "local": {"test_accuracy": local["test_accuracy"], "queries": local.get("queries")},
        "largest_program_difference": float(np.abs(programs[0] - programs[1]).max()),
        "program_size": float(np.abs(programs[1]).max()),
    }))


if __name__ == "__main__":
    main()
