"""Loads arnn-tf exports the way TensorFlow Serving does, in a process that never imports arnn_tf.

Run by tests/test_export.py as ``python model_server_loader.py CASES.json OUT.npz``. Each case
names an export folder, a signature and .npy inputs; the script runs it twice, through
``tf.saved_model.load`` (TF2) and through a TF1 session loaded with
``tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)`` with tensors looked up by
name in the MetaGraphDef's signature_def, as the model server does. Cases of one export run
in order in one session, so a good case after a bad one shows the session survives.
Feeds go through a session callable (``CallableOptions``, the C API), which, like the
server's ``Session::Run``, does not check the placeholder's shape or dtype in Python. Writes probabilities (and errors, as JSON) to OUT.npz.
"""

import json
import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2


def main(cases_path: str, out_path: str) -> None:
    cases = json.loads(open(cases_path).read())
    results: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    for export in dict.fromkeys(case["export"] for case in cases):
        mine = [case for case in cases if case["export"] == export]
        loaded = tf.saved_model.load(export)
        for case in mine:
            key = f"{case['key']}/tf2"
            try:
                function = loaded.signatures[case["signature"]]
                results[key] = function(**{k: tf.constant(v) for k, v in _inputs(case).items()})["probabilities"].numpy()
            except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
                errors[key] = str(error)
        graph = tf.Graph()
        with tf.compat.v1.Session(graph=graph) as session:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export)
            for case in mine:
                inputs = _inputs(case)
                signature = meta_graph.signature_def[case["signature"]]
                names = sorted(inputs)
                options = config_pb2.CallableOptions(feed=[signature.inputs[n].name for n in names],
                                                     fetch=[signature.outputs["probabilities"].name])
                run = session._make_callable_from_options(options)
                try:
                    results[f"{case['key']}/tf1"] = run(*[inputs[n] for n in names])[0]
                except tf.errors.InvalidArgumentError as error:
                    errors[f"{case['key']}/tf1"] = error.message
    results["errors"] = np.array(json.dumps(errors))
    results["imported_arnn_tf"] = np.array(any(m.startswith("arnn_tf") for m in sys.modules))
    np.savez(out_path, **results)


def _inputs(case: dict) -> dict[str, np.ndarray]:
    return {name: np.load(path, allow_pickle=True) for name, path in case["inputs"].items()}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
