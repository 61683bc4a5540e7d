"""Recipes: a training run's settings, defined once, named, checked and stored as JSON.

A `Recipe` holds everything that decides what a run learns (task, backbone, schedule, map,
placement, augmentation, seed); where and how it runs (output folder, time limit,
distribution, precision) stays outside it. The command line, `arnn_tf.runs.train` and saved
programs all read the same object: `arnn train --recipe NAME|FILE.json|PROGRAM` starts from
one, single options override single fields, and the saved program keeps the recipe it was
trained with, so rerunning it needs nothing else. Importable without TensorFlow.

Named recipes (`RECIPES`; their measured accuracies, with controls, are in `EXPERIMENTS.md`):

- ``paper``: the paper's settings exactly: counting, the task image padded and centred,
  the first-10 fixed map, Adam 0.05 decayed x0.96 every 2 epochs, lambda 1e-6, batch 32,
  300 steps.
- ``counting``: the default. A learned linear map on the logits (`linear`), cosine decay
  over 1,200 steps on a 112 x 112 frame (the 36 x 36 image padded in it), otherwise the
  paper's.
- ``mnist``: the digit resized to the frame with the program over it (the "full" program),
  the learned map, cosine decay over one epoch.
- ``cifar10`` (photos): the photo resized to 160 x 160 in the centre of the 224 frame, the
  program in the 32-pixel border around it, the learned map, cosine decay over one epoch,
  random flips in training, each test image averaged with its mirror image.
- ``folder``: any folder of images (``--task folder:PATH``, and the default recipe for one):
  ``cifar10``'s layout at any frame (each image, of any size and shape, resized to 5/7 of the
  frame's side, ``image_scale``), 600 steps whatever the folder's size, and nothing that
  changes what a digit or a letter is (no flips, no mirror average).
- ``many``: one program for many data sets (PermutedMNIST-10 by default): ``mnist``'s layout
  on a 112 x 112 frame, a learned map per part, cosine decay over one epoch of all the parts'
  training images, so a run's length grows with its parts and each part sees its own once.
- ``text``: a text task (``--task text:PATH``, and the default recipe for one): word tokens,
  patches of 16 x 16 pixels on a 112 x 112 frame (49 slots), a frame program over them, the
  learned map, cosine decay over 2,400 steps, no L2 (`arnn_tf.modalities.text`).

``code_dimension`` d, where set, writes W as a fixed projection (drawn from the seed) of a code
of d numbers onto a ``code_grid`` x ``code_grid`` x 3 grid upsampled to the frame, a program
of low intrinsic dimension (`arnn_tf.layers.frame_program`); a black-box run then draws its
directions in the code.

A task of several parts draws each training example's part by ``part_sampling`` ("uniform"
over the parts, or "proportional" to their sizes); ``part_regions`` gives each part its own
share of the frame (square tiles), so the parts' programs do not share an entry of W.

``frame_size`` (None: the backbone's own input size) sets the frame, n x n, that the program,
the task's input and the backbone share: the EfficientNets end in global pooling, so they take
any size, and a smaller frame is cheaper (a text step at 112: a third of one at 224 on 2 CPU
cores, `benchmarks/frame_speed.py`).

Any recipe trains through queries alone with ``trainer="black_box"`` (`arnn_tf.black_box`):
W's gradient is BAR's zeroth-order estimate from ``directions`` random directions of
``zo_resolution`` (None: the frame's) scaled by ``beta``, ``antithetic`` pairs doubling them,
drawn for each image of the batch with ``per_image_directions`` (the same frames, a less noisy
estimate), and each step costs ``batch_size * (1 + directions)`` frames (twice the directions when
antithetic), at most ``max_queries`` frames per process; W learns at ``program_lr_scale``
times the learning rate, by default a hundredth (`program_rate_scale`), its Adam first moment
decaying at ``program_momentum`` (`program_first_moment`), held while a learned map learns
alone for the first ``map_warmup_steps`` (one frame an image; by default half the run,
`map_warmup`), after which ``map_refit_epochs`` passes over the warmup's answers refit the
map, at no query (`map_refit`; `arnn_tf.black_box.answer_replay`); the estimate's norm is
bounded by ``zo_clip`` where set; with ``jacobian_memory`` (steps) the estimate is read through
the backbone's logit Jacobian pooled over the images and about that many steps
(`arnn_tf.black_box.pooled_jacobian`), or, with ``guide_rank`` k, the directions are guided by
that Jacobian (over ``jacobian_memory`` steps, 50 if None): ``guide_share`` of them drawn in its
top-k subspace, the rest outside it (`arnn_tf.black_box.guided_directions`);
``program_update`` "nesterov" steps W by SGD with Nesterov momentum (``program_momentum``)
instead of Adam, a step that follows the estimate's size (BlackVIP's SPSA-GC), and "cma"
(W a code) searches the code by CMA-ES instead, ``directions`` candidates a step first spread
by ``beta`` (`arnn_tf.black_box.evolution`); a frequency or iterative label map is computed from
the answers too, one frame per sample image and remap. With ``stand_in`` (a backbone name) W's
gradient is instead backpropagated through that local network, read through the map the
served answers train (one frame an image a step, W at the full rate by default): a local
stand-in for the served network, as AReS trains one, fitted at each step that trains W to the
answers it is given, with Adam at ``stand_in_rate`` where set (`arnn_tf.black_box.stand_in`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, NoReturn

from arnn_tf.black_box.defaults import (
    DEFAULT_BETA,
    DEFAULT_DIRECTIONS,
    DEFAULT_GUIDE_SHARE,
    DEFAULT_MAP_REFIT_EPOCHS,
    DEFAULT_MAP_WARMUP_SHARE,
    DEFAULT_PROGRAM_LR_SCALE,
    DEFAULT_ZO_RESOLUTION,
)
from arnn_tf.settings import (
    DEFAULT_CODE_GRID,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCEAL_SCALE,
    DEFAULT_FOCAL_GAMMA,
    DEFAULT_L2,
    DEFAULT_LEARNING_RATE,
    DEFAULT_STEPS,
    LOSSES,
    LR_SCHEDULES,
    PART_SAMPLING,
    PROGRAM_UPDATES,
    checked_augmentations,
)

DEFAULT_RECIPE = "counting"
PROGRAM_FILE = "program.json"
TASK_TO_SET = "folder:PATH"
"""The ``folder`` recipe's task, a placeholder for the user's own folder."""
TEXT_TASK_TO_SET = "text:PATH"
"""The ``text`` recipe's task, a placeholder for the user's own folder of text files."""
TEXT_LEVELS = ("word", "character")
"""How a text task is tokenised (`arnn_tf.modalities.text.text_task`'s levels)."""
ADAM_BETA_1 = 0.9
"""Adam's first-moment decay, keras' default, which the map (and a white-box W) keeps."""
BLACK_BOX_FIELDS = (
    "directions",
    "beta",
    "antithetic",
    "per_image_directions",
    "zo_resolution",
    "zo_clip",
    "max_queries",
    "stand_in",
    "stand_in_rate",
    "map_refit_epochs",
    "jacobian_memory",
    "guide_rank",
    "guide_share",
)
"""The zeroth-order estimator's fields and the query budget: black-box training's alone."""
TRAINERS = ("white_box", "black_box")
"""How a program learns: backpropagation through the backbone, or queries alone."""


_REQUIRED_NUMBERS = ("learning_rate", "l2", "focal_gamma", "guide_share")
"""Numeric fields that cannot be None."""
_POSITIVE_INTS = (
    "steps",
    "epochs",
    "batch_size",
    "image_size",
    "border_width",
    "patch_size",
    "frame_size",
    "code_dimension",
    "code_grid",
    "guide_rank",
)
"""Integer fields that are positive where set."""


class RecipeError(ValueError):
    """A recipe field holds a value no run can use, or a recipe cannot be found or read."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every setting that decides what a training run learns. Defaults are the paper's."""

    name: str = "custom"
    task: str = "counting"
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"
    steps: int | None = DEFAULT_STEPS
    epochs: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    lr_schedule: str = "paper"
    warmup_steps: int = 0
    ema: float | None = None
    l2: float = DEFAULT_L2
    loss: str = "cross_entropy"
    focal_gamma: float = DEFAULT_FOCAL_GAMMA
    program_lr_scale: float | None = None
    program_momentum: float | None = None
    program_update: str = "adam"
    label_map: str = "first"
    augment: tuple[str, ...] = ()
    image_size: int | None = None
    image_scale: float | None = None
    border_width: int | None = None
    linf_bound: float | None = None
    full_program: bool = False
    code_dimension: int | None = None
    code_grid: int = DEFAULT_CODE_GRID
    part_regions: bool = False
    freeze_program: bool = False
    map_warmup_steps: int | None = None
    map_refit_epochs: int | None = None
    jacobian_memory: float | None = None
    guide_rank: int | None = None
    guide_share: float = DEFAULT_GUIDE_SHARE
    flip_average: bool = False
    conceal: str | None = None
    conceal_scale: float | None = None
    seed: int = 0
    trainer: str = "white_box"
    directions: int = DEFAULT_DIRECTIONS
    beta: float = DEFAULT_BETA
    antithetic: bool = False
    per_image_directions: bool = False
    zo_resolution: int | None = DEFAULT_ZO_RESOLUTION
    zo_clip: float | None = None
    max_queries: int | None = None
    stand_in: str | None = None
    stand_in_rate: float | None = None
    patch_size: int = 16
    text_level: str = "word"
    frame_size: int | None = None
    part_sampling: str = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "augment", tuple(self.augment))
        _check(self)

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with ``changes``. Giving ``steps`` clears ``epochs`` and the other way round,
        ``image_size`` clears ``image_scale`` (and the other way round), and ``conceal`` clears
        the placement fields it leaves unset."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise RecipeError(
                f"unknown recipe field {', '.join(map(repr, unknown))}; known: {', '.join(FIELDS)}"
            )
        if changes.get("steps") is not None and "epochs" not in changes:
            changes["epochs"] = None
        if changes.get("epochs") is not None and "steps" not in changes:
            changes["steps"] = None
        for field, other in (("image_size", "image_scale"), ("image_scale", "image_size")):
            if changes.get(field) is not None and other not in changes:
                changes[other] = None
        if changes.get("conceal") is not None:  # the task image tiles the frame instead
            changes = {**{f: FIELD_DEFAULTS[f] for f in PLACEMENT_FIELDS}, **changes}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-ready values (``augment`` as a list)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Recipe":
        """The recipe ``values`` describe; fields left out keep the paper's defaults."""
        if not isinstance(values, dict):
            raise RecipeError(f"a recipe is a JSON object of fields, got {type(values).__name__}")
        return cls().replace(**values)


FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Recipe))
FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Recipe)}
PLACEMENT_FIELDS = ("image_size", "image_scale", "border_width", "linf_bound", "full_program")
"""Where an image goes in the frame and where the program acts: concealment sets neither."""


_BOUNDED_NUMBERS: tuple[tuple[str, Any, str], ...] = (
    ("learning_rate", lambda v: v > 0, "a number > 0"),
    ("linf_bound", lambda v: v > 0, "a number > 0"),
    ("ema", lambda v: 0 < v < 1, "a number strictly between 0 and 1"),
    ("conceal_scale", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("image_scale", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("l2", lambda v: v >= 0, "a number >= 0"),
    ("focal_gamma", lambda v: v >= 0, "a number >= 0"),
    ("program_lr_scale", lambda v: v > 0, "a number > 0"),
    ("program_momentum", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("zo_clip", lambda v: v > 0, "a number > 0"),
    ("stand_in_rate", lambda v: v > 0, "a number > 0"),
    ("jacobian_memory", lambda v: v >= 1, "a number of steps >= 1"),
    ("guide_share", lambda v: 0 < v < 1, "a number strictly between 0 and 1"),
)
"""Numeric fields, the values each takes and how an error says so (None is allowed unless the
field is in `_REQUIRED_NUMBERS`)."""


def _check(recipe: Recipe) -> None:
    """Raises RecipeError naming the first field no run can use."""
    if (recipe.steps is None) == (recipe.epochs is None):
        raise RecipeError(
            f"a recipe sets steps or epochs, exactly one; got steps {recipe.steps!r} "
            f"and epochs {recipe.epochs!r}"
        )
    for field in _POSITIVE_INTS:
        value = getattr(recipe, field)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            _refuse(recipe, field, "a positive integer")
    for field in ("warmup_steps", "seed"):
        value = getattr(recipe, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _refuse(recipe, field, "an integer >= 0")
    for field, holds, wanted in _BOUNDED_NUMBERS:
        value = getattr(recipe, field)
        if (value is not None or field in _REQUIRED_NUMBERS) and not (
            _is_number(value) and holds(value)
        ):
            _refuse(recipe, field, wanted)
    for field in ("antithetic", "per_image_directions", "part_regions"):
        if not isinstance(getattr(recipe, field), bool):
            _refuse(recipe, field, "true or false")
    for field, choices in (
        ("text_level", TEXT_LEVELS),
        ("part_sampling", PART_SAMPLING),
        ("program_update", PROGRAM_UPDATES),
        ("lr_schedule", LR_SCHEDULES),
        ("loss", LOSSES),
    ):
        if getattr(recipe, field) not in choices:
            _refuse(recipe, field, " or ".join(map(repr, choices)))
    if recipe.warmup_steps and recipe.lr_schedule != "cosine":
        raise RecipeError(
            "recipe field 'warmup_steps' needs the cosine schedule "
            f"(lr_schedule 'cosine'), not {recipe.lr_schedule!r}"
        )
    if recipe.map_warmup_steps is not None and not _is_int_at_least(recipe.map_warmup_steps, 0):
        _refuse(recipe, "map_warmup_steps", "an integer >= 0 or None")
    for field in ("freeze_program", "map_warmup_steps"):
        if getattr(recipe, field) and not recipe.label_map.startswith("linear"):
            raise RecipeError(
                f"recipe field {field!r} holds W fixed, so it needs a learned "
                f"label map ('linear...') to train, not {recipe.label_map!r}"
            )
    _check_placement(recipe)
    _check_black_box(recipe)
    try:
        checked_augmentations(recipe.augment)
    except ValueError as error:
        raise RecipeError(f"recipe field 'augment': {error}") from None


def _check_placement(recipe: Recipe) -> None:
    """One size for the task image; a concealed program tiles the task image over the whole
    frame: no placement fields."""
    if recipe.image_size is not None and recipe.image_scale is not None:
        raise RecipeError("recipe fields 'image_size' and 'image_scale' size the task image "
                          "both; set one")
    if recipe.conceal_scale is not None and recipe.conceal is None:
        raise RecipeError("recipe field 'conceal_scale' needs 'conceal' (the host photo)")
    placement = [f for f in PLACEMENT_FIELDS if getattr(recipe, f)]
    if recipe.conceal is not None and placement:
        raise RecipeError(
            "recipe field 'conceal' tiles the task image over the whole frame, so it takes "
            f"no placement fields; got {', '.join(placement)}"
        )


def _refuse(recipe: Recipe, field: str, wanted: str) -> NoReturn:
    raise RecipeError(f"recipe field {field!r} must be {wanted}, got {getattr(recipe, field)!r}")


def _check_black_box(recipe: Recipe) -> None:
    """The trainer and the zeroth-order estimator's fields."""
    if recipe.trainer not in TRAINERS:
        _refuse(recipe, "trainer", " or ".join(map(repr, TRAINERS)))
    for field, optional in (("directions", False), ("zo_resolution", True), ("max_queries", True)):
        value = getattr(recipe, field)
        if not (optional and value is None or _is_positive_int(value)):
            _refuse(recipe, field, "a positive integer" + (" or None" if optional else ""))
    if not (_is_number(recipe.beta) and recipe.beta > 0):
        _refuse(recipe, "beta", "a number > 0")
    if recipe.stand_in is not None and not isinstance(recipe.stand_in, str):
        _refuse(recipe, "stand_in", "a backbone's name or None")
    if recipe.stand_in_rate is not None and recipe.stand_in is None:
        raise RecipeError("recipe field 'stand_in_rate' fits a stand-in: it needs 'stand_in'")
    if recipe.map_refit_epochs is not None and not _is_int_at_least(recipe.map_refit_epochs, 0):
        _refuse(recipe, "map_refit_epochs", "an integer >= 0 or None")
    if recipe.map_refit_epochs and (
        recipe.trainer != "black_box" or not recipe.label_map.startswith("linear")
    ):
        raise RecipeError(
            "recipe field 'map_refit_epochs' refits a learned map on a black-box run's warmup "
            "answers: it needs trainer 'black_box' and a learned label map ('linear...')"
        )
    for pooled in ("jacobian_memory", "guide_rank"):
        if getattr(recipe, pooled) is not None and (
            recipe.trainer != "black_box" or recipe.program_update == "cma" or recipe.stand_in
        ):
            raise RecipeError(
                f"recipe field '{pooled}' pools the estimated Jacobians of a black-box run: "
                "it needs trainer 'black_box', a gradient step (program_update not 'cma') and "
                "no stand_in"
            )
    if recipe.stand_in is not None and (
        recipe.trainer != "black_box" or recipe.program_update == "cma"
    ):
        raise RecipeError(
            "recipe field 'stand_in' gives a black-box run W's gradient from a local network: "
            "it needs trainer 'black_box' and a gradient step (program_update not 'cma')"
        )
    if recipe.program_update == "cma" and (
        recipe.trainer != "black_box"
        or recipe.code_dimension is None
        or recipe.directions < 2
        or recipe.per_image_directions
    ):
        raise RecipeError(
            "recipe field 'program_update' 'cma' searches a program's code through queries: it "
            "needs trainer 'black_box', a code_dimension and directions >= 2 (the population), "
            "one generation for the batch (per_image_directions false)"
        )


def _is_positive_int(value: Any) -> bool:
    return _is_int_at_least(value, 1)


def _is_int_at_least(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_LEARNED_MAP = {"label_map": "linear", "lr_schedule": "cosine", "steps": 600}
_ONE_EPOCH = {"steps": None, "epochs": 1}
_FULL_FRAME = {"image_size": 224, "full_program": True, **_LEARNED_MAP}
_PHOTOS = {"image_size": 160, "augment": ("flip",), "flip_average": True, **_LEARNED_MAP}
_ANY_FOLDER = {"image_scale": 160 / 224, **_LEARNED_MAP}

RECIPES: dict[str, Recipe] = {
    "paper": Recipe(name="paper"),
    "counting": Recipe(
        name="counting", label_map="linear", lr_schedule="cosine", steps=1200, frame_size=112
    ),
    "mnist": Recipe(name="mnist", task="mnist", **{**_FULL_FRAME, **_ONE_EPOCH}),
    "cifar10": Recipe(name="cifar10", task="cifar10", **{**_PHOTOS, **_ONE_EPOCH}),
    "folder": Recipe(name="folder", task=TASK_TO_SET, **_ANY_FOLDER),
    "many": Recipe(
        name="many",
        task="permuted:10:mnist",
        frame_size=112,
        **{**_FULL_FRAME, **_ONE_EPOCH, "image_size": 112},
    ),
    "text": Recipe(
        name="text",
        task=TEXT_TASK_TO_SET,
        label_map="linear",
        lr_schedule="cosine",
        steps=2400,
        l2=0.0,
        frame_size=112,
    ),
}


def default_recipe(task: str | None) -> str:
    """The named recipe a run on ``task`` starts from when none is named: ``text`` for a text
    task ("text:..."), ``folder`` for a folder of images ("folder:..."), otherwise
    `DEFAULT_RECIPE`."""
    for prefix in ("text", "folder"):
        if task is not None and task.startswith(f"{prefix}:"):
            return prefix
    return DEFAULT_RECIPE


def program_rate_scale(recipe: Recipe) -> float:
    """W's learning rate as a fraction of the recipe's: its ``program_lr_scale``, by default
    1 for white-box training (or a stand-in's gradient) and `DEFAULT_PROGRAM_LR_SCALE` for
    black-box estimates of W's gradient, whose noise hurts at the full rate."""
    if recipe.program_lr_scale is not None:
        return recipe.program_lr_scale
    estimated = recipe.trainer == "black_box" and recipe.stand_in is None
    return DEFAULT_PROGRAM_LR_SCALE if estimated else 1.0


def conceal_scale(recipe: Recipe) -> float | None:
    """The weight of the task input in the host photo: the recipe's ``conceal_scale``, by
    default `DEFAULT_CONCEAL_SCALE` for a recipe that conceals; None for one that does not."""
    if recipe.conceal is None:
        return None
    return DEFAULT_CONCEAL_SCALE if recipe.conceal_scale is None else recipe.conceal_scale


def program_first_moment(recipe: Recipe) -> float:
    """W's Adam first-moment decay (beta_1): its ``program_momentum``, by default Adam's 0.9."""
    return ADAM_BETA_1 if recipe.program_momentum is None else recipe.program_momentum


def map_warmup(recipe: Recipe, steps: int) -> int:
    """The first steps of a run of ``steps`` in which W is held while a learned map learns
    alone: ``map_warmup_steps``, by default `DEFAULT_MAP_WARMUP_SHARE` of them for black-box
    training with a learned map that trains W, else none."""
    if recipe.map_warmup_steps is not None:
        return recipe.map_warmup_steps
    return int(steps * DEFAULT_MAP_WARMUP_SHARE) if _warms_up_the_map(recipe) else 0


def map_refit(recipe: Recipe) -> int:
    """Passes over a black-box run's warmup answers that refit its learned map before W's
    first estimate: ``map_refit_epochs``, by default `DEFAULT_MAP_REFIT_EPOCHS` where the run
    has a map warmup (black-box, a learned map, W trained), else none."""
    if recipe.map_refit_epochs is not None:
        return recipe.map_refit_epochs
    return DEFAULT_MAP_REFIT_EPOCHS if _warms_up_the_map(recipe) else 0


def _warms_up_the_map(recipe: Recipe) -> bool:
    """Whether a run holds W for a warmup by default: black-box, a learned map, W trained."""
    learns_both = recipe.label_map.startswith("linear") and not recipe.freeze_program
    return recipe.trainer == "black_box" and learns_both


def require_task(recipe: Recipe) -> str:
    """The recipe's task spec, refusing the ``folder`` recipe's placeholder."""
    if recipe.task in (TASK_TO_SET, TEXT_TASK_TO_SET):
        kind = "images" if recipe.task == TASK_TO_SET else "text files"
        prefix = recipe.task.partition(":")[0]
        raise RecipeError(
            f"recipe {recipe.name!r} needs its task: a folder of your {kind}, "
            f"task '{prefix}:/your/folder'"
        )
    return recipe.task


def load_recipe(source: str) -> Recipe:
    """A named recipe, a recipe JSON file, or the recipe a saved program was trained with
    (its folder or its ``program.json``)."""
    if source in RECIPES:
        return RECIPES[source]
    path = Path(source)
    if path.is_dir():
        path = path / PROGRAM_FILE
    if not path.is_file():
        raise RecipeError(
            f"no recipe {source!r}: not one of {', '.join(RECIPES)}, nor a recipe "
            "JSON file or saved-program folder"
        )
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecipeError(f"{path} is not a readable JSON recipe: {error}") from None
    if isinstance(document, dict) and "format" in document:  # a saved program
        if "recipe" not in document:
            raise RecipeError(
                f"{path} is a saved program from before recipes were stored; "
                "its settings are in its metrics"
            )
        document = document["recipe"]
    return Recipe.from_dict(document)


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Writes ``recipe`` as JSON (what `load_recipe` reads back)."""
    path = Path(path)
    path.write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
    return path
