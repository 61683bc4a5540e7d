"""arnn-tf: adversarial reprogramming of frozen ImageNet classifiers (Keras 3 / TensorFlow)."""

import os

# TensorFlow enables its oneDNN CPU kernels by default only on CPUs with AVX-512 VNNI, BF16 or
# AMX; elsewhere (AVX2-only CPUs such as the AMD EPYC in BENCHMARKS.md) the reprogramming step
# measured about 2x faster with them on. Read when TensorFlow is first imported, so it applies
# when arnn_tf is imported first; TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
