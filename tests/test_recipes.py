"""Recipes: the one definition of a run, checked, named, stored and rerun."""

import json
import math
import re

import pytest

import arnn_tf
from arnn_tf.cli.main import main
from arnn_tf.black_box.defaults import DEFAULT_MAP_REFIT_EPOCHS
from arnn_tf.recipes import (
    RECIPES, Recipe, RecipeError, default_recipe, load_recipe, map_refit, save_recipe,
)
from arnn_tf.tasks.specs import part_specs
from arnn_tf.training.plan import TrainingPlan


def test_every_named_recipe_round_trips_through_json(tmp_path):
    for name, recipe in RECIPES.items():
        assert recipe.name == name
        assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
        assert load_recipe(str(save_recipe(recipe, tmp_path / f"{name}.json"))) == recipe


def test_the_paper_recipe_is_the_papers_settings():
    paper = RECIPES["paper"]
    assert (paper.task, paper.steps, paper.batch_size, paper.learning_rate, paper.lr_schedule,
            paper.l2, paper.label_map, paper.image_size, paper.full_program, paper.augment) == (
        "counting", 300, 32, 0.05, "paper", 1e-6, "first", None, False, ())


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "'batch_size' must be a positive integer, got 0"),
    ({"learning_rate": float("nan")}, "'learning_rate' must be a number > 0"),
    ({"steps": None}, "steps or epochs, exactly one"),
    ({"ema": 1.5}, "'ema' must be a number strictly between 0 and 1"),
    ({"lr_schedule": "linear"}, "'lr_schedule' must be 'paper' or 'cosine'"),
    ({"warmup_steps": 10}, "'warmup_steps' needs the cosine schedule"),
    ({"freeze_program": True}, "needs a learned label map"),
    ({"augment": ["rotate"]}, "unknown augmentation rotate"),
    ({"learning_rte": 0.1}, "unknown recipe field 'learning_rte'"),
    ({"conceal": "photo.png", "image_size": 20}, "takes no placement fields; got image_size"),
    ({"trainer": "grey_box"}, "'trainer' must be 'white_box' or 'black_box', got 'grey_box'"),
    ({"directions": 0}, "'directions' must be a positive integer, got 0"),
    ({"directions": 2.5}, "'directions' must be a positive integer, got 2.5"),
    ({"beta": 0.0}, "'beta' must be a number > 0, got 0.0"),
    ({"antithetic": "yes"}, "'antithetic' must be true or false"),
    ({"per_image_directions": 1}, "'per_image_directions' must be true or false"),
    ({"zo_resolution": 0}, "'zo_resolution' must be a positive integer or None, got 0"),
    ({"max_queries": -5}, "'max_queries' must be a positive integer or None, got -5"),
    ({"loss": "hinge"}, "'loss' must be 'cross_entropy' or 'focal', got 'hinge'"),
    ({"focal_gamma": -1.0}, "'focal_gamma' must be a number >= 0, got -1.0"),
    ({"focal_gamma": None}, "'focal_gamma' must be a number >= 0, got None"),
    ({"program_lr_scale": 0}, "'program_lr_scale' must be a number > 0, got 0"),
    ({"program_momentum": 1.0}, "'program_momentum' must be a number in [0, 1), got 1.0"),
    ({"map_warmup_steps": -1}, "'map_warmup_steps' must be an integer >= 0 or None, got -1"),
    ({"map_warmup_steps": 5}, "'map_warmup_steps' holds W fixed, so it needs a learned"),
    ({"map_refit_epochs": -1}, "'map_refit_epochs' must be an integer >= 0 or None, got -1"),
    ({"jacobian_memory": 0.5}, "'jacobian_memory' must be a number of steps >= 1, got 0.5"),
    ({"jacobian_memory": 20}, "it needs trainer 'black_box', a gradient step"),
    ({"jacobian_memory": 20, "trainer": "black_box", "stand_in": "tiny_cnn"}, "and no stand_in"),
    ({"guide_rank": 0, "trainer": "black_box"}, "'guide_rank' must be a positive integer"),
    ({"guide_rank": 25}, "'guide_rank' pools the estimated Jacobians of a black-box run"),
    ({"guide_share": None}, "'guide_share' must be a number strictly between 0 and 1, got None"),
    ({"map_refit_epochs": 5, "label_map": "linear"}, "it needs trainer 'black_box' and a"),
    ({"map_refit_epochs": 5, "trainer": "black_box"}, "and a learned label map ('linear...')"),
])
def test_bad_fields_are_refused_by_name(changes, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        RECIPES["paper"].replace(**changes)


BLACK_BOX = {"trainer": "black_box", "directions": 4, "beta": 0.1, "antithetic": True,
             "per_image_directions": True, "zo_resolution": None, "max_queries": 5000}


def test_black_box_fields_round_trip_and_old_recipes_load_with_their_defaults(tmp_path):
    recipe = RECIPES["counting"].replace(**BLACK_BOX)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    assert load_recipe(str(save_recipe(recipe, tmp_path / "bb.json"))) == recipe
    old = {k: v for k, v in RECIPES["paper"].to_dict().items() if k not in BLACK_BOX}
    (tmp_path / "program").mkdir()  # a saved program from before black-box training
    (tmp_path / "program" / "program.json").write_text(json.dumps({"format": 3, "recipe": old}))
    loaded = load_recipe(str(tmp_path / "program"))
    assert loaded == Recipe.from_dict(old) == RECIPES["paper"]
    assert (loaded.trainer, loaded.directions, loaded.beta, loaded.antithetic,
            loaded.per_image_directions, loaded.zo_resolution, loaded.max_queries) == (
        "white_box", 10, 0.05, False, False, 16, None)


def test_the_loss_and_the_programs_rate_round_trip_and_come_from_the_command_line(tmp_path):
    from arnn_tf.cli.commands.train import recipe_overrides
    from arnn_tf.cli.main import build_parser

    flags = ["train", "--loss", "focal", "--focal-gamma", "4", "--program-lr-scale", "0.1",
             "--program-momentum", "0.99", "--map-warmup-steps", "50"]
    overrides = recipe_overrides(build_parser().parse_args(flags))
    assert overrides == {"loss": "focal", "focal_gamma": 4.0, "program_lr_scale": 0.1,
                         "program_momentum": 0.99, "map_warmup_steps": 50}
    recipe = RECIPES["counting"].replace(**overrides)
    assert load_recipe(str(save_recipe(recipe, tmp_path / "focal.json"))) == recipe
    old = {k: v for k, v in RECIPES["paper"].to_dict().items() if k not in overrides}
    assert (Recipe.from_dict(old).loss, Recipe.from_dict(old).program_lr_scale) == (
        "cross_entropy", None)
    assert recipe.replace(**recipe_overrides(build_parser().parse_args(
        ["train", "--program-lr-scale", "none"]))).program_lr_scale is None


def test_w_learns_slower_by_default_only_in_black_box_training():
    from arnn_tf.recipes import program_rate_scale

    white, black = RECIPES["counting"], RECIPES["counting"].replace(trainer="black_box")
    assert (program_rate_scale(white), program_rate_scale(black)) == (1.0, 0.01)
    assert program_rate_scale(black.replace(program_lr_scale=1)) == 1


def test_ws_first_moment_is_adams_unless_set():
    from arnn_tf.recipes import ADAM_BETA_1, program_first_moment

    assert program_first_moment(RECIPES["counting"]) == ADAM_BETA_1 == 0.9
    assert program_first_moment(RECIPES["counting"].replace(program_momentum=0.0)) == 0.0


@pytest.mark.parametrize("label_map", ["first", "random:3", "9,3", "1+2,5+6", "linear", "linear:first",
                                       "frequency", "frequency:2", "iterative:3",
                                       "linear:frequency", "linear:frequency:2"])
def test_black_box_takes_every_label_map(label_map):
    recipe = RECIPES["paper"].replace(trainer="black_box", label_map=label_map)
    assert (recipe.trainer, recipe.label_map) == ("black_box", label_map)


def test_the_command_line_sets_the_black_box_fields():
    from arnn_tf.cli.commands.train import recipe_overrides
    from arnn_tf.cli.main import build_parser

    def overrides(*flags):
        return recipe_overrides(build_parser().parse_args(["train", *flags]))

    assert overrides() == {}
    assert overrides("--black-box", "--directions", "2", "--beta", "0.1", "--antithetic",
                     "--zo-resolution", "none", "--max-queries", "900") == {
        "trainer": "black_box", "directions": 2, "beta": 0.1, "antithetic": True,
        "zo_resolution": None, "max_queries": 900}
    assert overrides("--no-black-box", "--no-antithetic", "--zo-resolution", "8") == {
        "trainer": "white_box", "antithetic": False, "zo_resolution": 8}
    assert overrides("--per-image-directions") == {"per_image_directions": True}
    assert overrides("--map-refit-epochs", "20") == {"map_refit_epochs": 20}
    assert overrides("--map-refit-epochs", "none") == {"map_refit_epochs": None}
    assert overrides("--jacobian-memory", "50") == {"jacobian_memory": 50.0}
    assert overrides("--jacobian-memory", "none") == {"jacobian_memory": None}
    assert overrides("--guide-rank", "25", "--guide-share", "0.7") == {
        "guide_rank": 25, "guide_share": 0.7}
    assert overrides("--guide-rank", "none") == {"guide_rank": None}
    assert overrides("--stand-in", "efficientnet_lite1") == {"stand_in": "efficientnet_lite1"}
    assert overrides("--stand-in", "none", "--stand-in-rate", "1e-4") == {
        "stand_in": None, "stand_in_rate": 1e-4}
    assert RECIPES["paper"].replace(**BLACK_BOX).replace(**overrides("--max-queries", "none")
                                                         ).max_queries is None


def test_image_size_and_image_scale_replace_each_other_and_conceal_clears_placement():
    folder = RECIPES["folder"]
    assert folder.image_scale == pytest.approx(160 / 224) and folder.image_size is None
    assert folder.replace(image_size=20).image_scale is None
    assert folder.replace(image_size=20).replace(image_scale=0.5).image_size is None
    with pytest.raises(RecipeError, match="'image_size' and 'image_scale'"):
        Recipe.from_dict({"image_size": 20, "image_scale": 0.5})
    with pytest.raises(RecipeError, match="'image_scale' must be a number in"):
        folder.replace(image_scale=1.5)
    concealed = RECIPES["cifar10"].replace(conceal="photo.png")
    assert concealed.image_size is None and not concealed.full_program


def test_the_program_update_and_the_estimate_clip_are_checked():
    assert RECIPES["counting"].program_update == "adam" and RECIPES["counting"].zo_clip is None
    with pytest.raises(RecipeError, match="'program_update' must be 'adam' or 'nesterov'"):
        RECIPES["counting"].replace(program_update="sgd")
    with pytest.raises(RecipeError, match="'zo_clip' must be a number > 0"):
        RECIPES["counting"].replace(zo_clip=0)


def test_a_folder_task_defaults_to_the_folder_recipe_which_keeps_digits_as_they_are():
    assert default_recipe("folder:/data/photos") == "folder"
    assert default_recipe("folder:/data/photos+folder:/data/digits") == "folder"
    assert default_recipe("mnist") == "counting"
    assert RECIPES["folder"].augment == () and not RECIPES["folder"].flip_average


def test_steps_and_epochs_replace_each_other():
    assert RECIPES["paper"].replace(epochs=2).steps is None
    assert RECIPES["paper"].replace(epochs=2).replace(steps=5).epochs is None


def test_unknown_sources_and_the_folder_placeholder_are_clear_errors(tmp_path):
    with pytest.raises(RecipeError, match="not one of paper, counting"):
        load_recipe("fastest")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RecipeError, match="not a readable JSON recipe"):
        load_recipe(str(tmp_path / "bad.json"))
    with pytest.raises(RecipeError, match="needs its task"):
        arnn_tf.train(RECIPES["folder"], tmp_path / "run")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    for split, count in (("train", 8), ("test", 4)):
        for name, value in (("dark", 30), ("bright", 220)):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.full((12, 12, 3), value + i, "uint8")).save(root / split / name / f"{i}.png")
    return root


def test_flags_override_single_fields_and_the_program_keeps_its_recipe(folder, tmp_path):
    argv = ["train", "--recipe", "paper", "--task", f"folder:{folder}", "--backbone", "tiny_cnn",
            "--weights", "none", "--steps", "3", "--batch-size", "4", "--augment", "flip"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["recipe"], metrics["label_map"], metrics["lr_schedule"], metrics["steps"],
            metrics["augment"]) == ("paper", "first", "paper", 3, "flip")
    stored = load_recipe(str(tmp_path / "run" / "program"))
    assert stored == RECIPES["paper"].replace(task=f"folder:{folder}", backbone="tiny_cnn",
                                              weights="none", steps=3, batch_size=4,
                                              augment=("flip",))
    assert main(["train", "--recipe", str(tmp_path / "run" / "program"),
                 "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test_accuracy"] == metrics["test_accuracy"]


def test_the_library_call_does_what_the_command_does(folder, tmp_path):
    recipe = RECIPES["folder"].replace(task=f"folder:{folder}", backbone="tiny_cnn", weights="none",
                                       steps=3, batch_size=4)
    metrics = arnn_tf.train(recipe, tmp_path / "lib", verbose=False)
    assert main(["train", "--task", f"folder:{folder}", "--backbone", "tiny_cnn", "--weights", "none",
                 "--steps", "3", "--batch-size", "4", "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert cli["recipe"] == metrics["recipe"] == "folder" and cli["label_map"] == "linear"
    assert cli["test_accuracy"] == metrics["test_accuracy"]


def test_the_paper_recipe_trains_what_the_library_calls_train_with_the_paper_settings(folder, tmp_path):
    import numpy as np

    from arnn_tf.backbones import build_backbone
    from arnn_tf.modalities.image.model import build_reprogrammed_model
    from arnn_tf.tasks.specs import get_task
    from fitting import fit

    assert main(["train", "--recipe", "paper", "--task", f"folder:{folder}", "--backbone", "tiny_cnn",
                 "--weights", "none", "--steps", "3", "--batch-size", "4", "--out", str(tmp_path / "run")]) == 0
    task = get_task(f"folder:{folder}")
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=0), task.image_shape,
                                     task.num_classes, label_map="first", seed=0, l2=1e-6)
    fit(model, task, steps=3, batch_size=4, learning_rate=0.05, lr_schedule="paper", seed=0)
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "program" / "W.npy"),
                                  model.program.weight.numpy())


def test_the_frame_size_comes_from_the_command_line_and_old_recipes_keep_the_native_frame():
    from arnn_tf.cli.commands.train import recipe_overrides
    from arnn_tf.cli.main import build_parser

    args = build_parser().parse_args(["train", "--frame-size", "112"])
    assert recipe_overrides(args) == {"frame_size": 112}
    old = {k: v for k, v in RECIPES["text"].to_dict().items() if k != "frame_size"}
    assert Recipe.from_dict(old).frame_size is None
    with pytest.raises(RecipeError, match="'frame_size' must be a positive integer"):
        RECIPES["text"].replace(frame_size=-4)


def test_a_black_box_run_with_a_learned_map_holds_w_for_half_its_steps_by_default():
    from arnn_tf.recipes import map_warmup

    black = RECIPES["counting"].replace(trainer="black_box")
    assert (map_warmup(black, 400), map_warmup(RECIPES["counting"], 400)) == (200, 0)
    assert map_warmup(black.replace(map_warmup_steps=10), 400) == 10
    assert map_warmup(black.replace(freeze_program=True), 400) == 0
    assert map_warmup(RECIPES["paper"].replace(trainer="black_box"), 400) == 0  # a fixed map


def test_the_many_recipe_trains_one_epoch_of_every_parts_examples():
    many = RECIPES["many"]
    assert part_specs(many.task) == [f"shuffled:{i}:mnist" for i in range(1, 11)]
    assert many.label_map == "linear" and many.full_program and many.frame_size == 112
    ten, hundred = (TrainingPlan.resolve(many, 2000 * parts) for parts in (10, 100))
    assert hundred.steps == 10 * ten.steps == 10 * math.ceil(20000 / many.batch_size)


def test_a_black_box_run_with_a_learned_map_refits_it_after_its_warmup_by_default():
    counting = RECIPES["counting"]
    assert map_refit(counting) == 0
    assert map_refit(counting.replace(trainer="black_box")) == DEFAULT_MAP_REFIT_EPOCHS
    assert map_refit(counting.replace(trainer="black_box", map_refit_epochs=0)) == 0
    assert map_refit(counting.replace(trainer="black_box", freeze_program=True)) == 0
    assert map_refit(RECIPES["paper"].replace(trainer="black_box")) == 0  # a fixed map
