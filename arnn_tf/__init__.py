"""arnn-tf: adversarial reprogramming of frozen ImageNet classifiers (Keras 3 / TensorFlow)."""

__version__ = "0.1.0"
