"""Shared test setup: quiet TensorFlow and a private Keras cache (never the user's ~/.keras)."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="arnn-test-keras-home-")
