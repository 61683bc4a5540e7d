"""The programs committed in saved_programs/ load, match their backbone, and are listed with their metrics."""

from pathlib import Path

import pytest

from arnn_tf.backbones import get_backbone_spec
from arnn_tf.programs.saved import SavedProgram

ROOT = Path(__file__).resolve().parents[1] / "saved_programs"
PROGRAMS = sorted(path for path in ROOT.iterdir() if (path / "program.json").exists())


def test_the_trained_programs_are_committed():
    assert {path.name for path in PROGRAMS} >= {"counting-efficientnet_lite0", "mnist-efficientnet_lite0",
                                                  "cifar10-efficientnet_lite0", "mnist+cifar10-efficientnet_lite0"}


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda path: path.name)
def test_committed_program_loads_and_its_readme_row_quotes_its_metrics(path):
    saved = SavedProgram.load(path)
    assert saved.frame_size <= get_backbone_spec(saved.backbone.name).input_size
    assert saved.weight.shape == (saved.frame_size, saved.frame_size, 3)
    if saved.part.learned_map is None:
        assert len(saved.part.label_groups) == len(saved.class_names)
    else:
        assert saved.part.learned_map[0].shape == (1000, len(saved.class_names))
    accuracy = saved.metrics["test_accuracy"]
    assert 0.0 <= accuracy <= 1.0
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `{path.name}`"))
    assert f"{accuracy:.4f}" in row
