"""Does a program trained on one network help another? (a stand-in for black-box training)

Trains the ``counting`` recipe white-box on ``--source`` (default EfficientNet-Lite1) for
``--steps``, then holds that W on ``--target`` (default Lite0) and trains the target's learned
map alone over it for as many steps: against the target's map alone with W at zero (the
control, `arnn train --steps N --freeze-program`), the difference is what the source's
program carries over. Prints one JSON line.

    python benchmarks/program_transfer.py --steps 400
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from arnn_tf.recipes import RECIPES
from arnn_tf.runs import build_model, train
from arnn_tf.tasks.specs import recipe_task
from arnn_tf.training.evaluation import test_results
from arnn_tf.training.white_box import WhiteBoxTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="efficientnet_lite1")
    parser.add_argument("--target", default="efficientnet_lite0")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("runs/program_transfer"))
    args = parser.parse_args()
    base = RECIPES["counting"].replace(steps=args.steps)
    source = train(base.replace(backbone=args.source), args.out / args.source, verbose=False)
    weight = np.load(args.out / args.source / "program" / "W.npy")
    recipe = base.replace(backbone=args.target, freeze_program=True)
    task = recipe_task(recipe, None)
    model = build_model(recipe, task)
    model.program.weight.assign(weight)
    WhiteBoxTrainer().fit(model, task, recipe, verbose=False)
    target, _ = test_results(model, task, verbose=False)
    print(json.dumps({
        "source": args.source,
        "source_white_box": round(source["test_accuracy"], 4),
        "target": args.target,
        "target_map_over_source_program": round(target["accuracy"], 4),
        "steps": args.steps,
    }))


if __name__ == "__main__":
    main()
