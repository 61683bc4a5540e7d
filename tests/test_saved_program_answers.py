"""Each committed saved program answers as it did when its answers were recorded.

A guard for refactors of the model, the layers and the saved-program format: every program
in saved_programs/ is rebuilt and asked about a fixed, seeded sample of inputs of its task's
shape (the real data sets are not in the repository), and its probabilities must match the
recorded ones. The counting program also keeps its accuracy on the first generated counting
test images. `ARNN_TF_RECORD_ANSWERS=1` rewrites the record (only after a deliberate change).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.specs import get_task

ROOT = Path(__file__).resolve().parents[1] / "saved_programs"
RECORD = Path(__file__).resolve().parent / "golden" / "saved_program_answers.json"
PROGRAMS = sorted(path.name for path in ROOT.iterdir() if (path / "program.json").exists())
SAMPLE = 6


def sample_images(saved: SavedProgram) -> np.ndarray:
    """A fixed sample of uint8 images of the program's task shape."""
    rng = np.random.default_rng(2026)
    return rng.integers(0, 256, (SAMPLE, *saved.task_image_shape)).astype("uint8")


def answers(name: str) -> dict:
    saved = SavedProgram.load(ROOT / name)
    model = saved.build_model()
    result = {"probabilities": model.predict(sample_images(saved), verbose=0).round(5).tolist()}
    if saved.task_name == "counting":
        images, labels = next(iter(get_task("counting").dataset("test", 200)))
        predicted = model.predict(images.numpy(), verbose=0).argmax(axis=-1)
        result["accuracy_first_200"] = float(np.mean(predicted == labels.numpy()))
    return result


@pytest.mark.parametrize("name", PROGRAMS)
def test_committed_program_answers_as_recorded(name):
    found = answers(name)
    if os.environ.get("ARNN_TF_RECORD_ANSWERS") == "1":
        record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
        RECORD.parent.mkdir(exist_ok=True)
        RECORD.write_text(json.dumps({**record, name: found}, indent=1) + "\n")
    expected = json.loads(RECORD.read_text())[name]
    np.testing.assert_allclose(found["probabilities"], expected["probabilities"], atol=2e-4)
    assert found.get("accuracy_first_200") == expected.get("accuracy_first_200")
