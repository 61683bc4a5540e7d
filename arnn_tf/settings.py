"""Default settings and the names of every choice, importable without TensorFlow.

The modules that use them (training, model, distribute, label maps, layers, tasks, export,
tuning) import them from here, and so does the command line's parser, which is how
`arnn --help` and `arnn --version` answer without starting TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_BATCH_SIZE = 32
DEFAULT_STEPS = 300
DEFAULT_L2 = 1e-6
DEFAULT_LEARNING_RATE = 0.05
LR_SCHEDULES = ("paper", "cosine")
LOSSES = ("cross_entropy", "focal")
"""The training loss: the paper's cross-entropy, or focal loss (BAR's), ``(1 - p)^gamma`` times
the cross-entropy of the true class's probability ``p``, which weighs hard examples up."""
DEFAULT_FOCAL_GAMMA = 2.0
DEFAULT_CODE_GRID = 16
"""The side of the grid a program's code is projected onto before it is upsampled."""

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

DEFAULT_CONCEAL_SCALE = 0.1

LABEL_MAP_HELP = (
    "first (the paper: task class i <- ImageNet class i), first:K (K consecutive classes each), "
    "random[:K] (a seeded random choice, K per class), frequency[:K] (each task class takes the "
    "ImageNet classes the network predicts most for it before training), iterative[:K] (the same, "
    "recomputed every epoch), an explicit list like '9,3,7' or '1+2,5+6' (one entry per task "
    "class, '+' joins several ImageNet classes), or linear (a learned linear map on the logits, "
    "trained with the program), linear:MAP (the same, starting from a fixed MAP, e.g. "
    "linear:frequency)"
)

AUGMENTATIONS: tuple[str, ...] = ("flip", "crop")
"""Training-time augmentations `Task.dataset` knows: a random left-right flip, and a random
shift of up to `CROP_PADDING` pixels (zero padding, then a crop back to the image's size)."""

CROP_PADDING = 4

DEFAULT_MAX_PIXELS = 4096 * 4096
"""The largest image (height x width) an exported model's bytes signature decodes."""

DEFAULT_TRIAL_STEPS = 100
TUNERS = ("random", "hyperband", "bayesian")
MAX_VALIDATION_SIZE = 1000
DEFAULT_SPACE_FILE = Path(__file__).resolve().parent.parent / "tuning" / "default_space.json"


def checked_augmentations(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` if each is one of `AUGMENTATIONS`; raises ValueError naming the others."""
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)}"
        )
    return tuple(names)


PROGRAM_UPDATES: tuple[str, ...] = ("adam", "nesterov", "cma")
"""How W steps on its gradient: Adam (a step of about the rate in every entry, whatever the
gradient's size), or SGD with Nesterov momentum (a step that follows the gradient's size:
SPSA-GC, BlackVIP's update for zeroth-order estimates); or, black-box with W a code, no
gradient at all: CMA-ES over the code (BPT-VLM's search)."""

PART_SAMPLING: tuple[str, ...] = ("uniform", "proportional")
"""How a task of several parts draws each training example's part: uniformly over the parts,
or in proportion to their sizes."""
