"""arnn-tf: adversarial reprogramming of frozen ImageNet classifiers (Keras 3 / TensorFlow)."""

import os

# TensorFlow enables its oneDNN CPU kernels by default only on CPUs with AVX-512 VNNI, BF16 or
# AMX; elsewhere (AVX2-only CPUs such as the AMD EPYC in BENCHMARKS.md) the reprogramming step
# measured about 2x faster with them on. Read when TensorFlow is first imported, so it applies
# when arnn_tf is imported first; TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

_LIBRARY_API = {
    "train": "arnn_tf.runs",
    "Recipe": "arnn_tf.recipes",
    "RECIPES": "arnn_tf.recipes",
    "load_recipe": "arnn_tf.recipes",
}


def __getattr__(name: str) -> object:
    """``arnn_tf.train``, ``arnn_tf.Recipe``, ...: imported on first use, so that importing
    arnn_tf (as `arnn --help` does) does not start TensorFlow."""
    if name not in _LIBRARY_API:
        raise AttributeError(f"module 'arnn_tf' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LIBRARY_API[name]), name)
