"""Shared test setup: quiet TensorFlow, a private Keras cache, and small model pieces."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

