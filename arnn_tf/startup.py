"""A quiet TensorFlow start for the command line.

While TensorFlow's shared libraries load, their C++ code writes straight to file descriptor 2
("All log messages before absl::InitializeLog() ...", the oneDNN notice, twice, the
CPU-instructions notice), before any Python or ``TF_CPP_MIN_LOG_LEVEL`` setting can hold them
back. The command line imports TensorFlow once with that descriptor pointed at a temporary
file, so users see the command's own output; a failed import shows what was held back.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras with their native start-up lines discarded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later C++ info and warning lines
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held_back:
        os.dup2(held_back.fileno(), 2)
        try:
            import keras  # noqa: F401  (imports TensorFlow, the backend)
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            held_back.seek(0)
            sys.stderr.write(held_back.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
