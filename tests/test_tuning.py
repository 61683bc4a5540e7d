"""Hyper-parameter search (`arnn_tf.tuning`) on the tiny backbone and a small image folder."""

import csv
import json

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.plugins.hparams import plugin_data_pb2

from arnn_tf.backbones import build_backbone
from arnn_tf.cli.commands.tune import run as tune_command
from arnn_tf.cli.main import build_parser, main
from arnn_tf.label_maps.frequency import frequency_map, source_network, source_probabilities
from arnn_tf.label_maps.specs import parse_label_map
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import FIELDS, RECIPES, load_recipe
from arnn_tf.settings import DEFAULT_SPACE_FILE
from arnn_tf.tasks.base import TaskPart
from arnn_tf.tuning import search as tuning_search
from arnn_tf.tuning.holdout import holdout_split
from arnn_tf.tuning.hypermodel import ReprogrammingHyperModel
from arnn_tf.tuning.report import BEST_RECIPE_FILE
from arnn_tf.tuning.search import PROJECT_NAME
from arnn_tf.tuning.space import SearchSpace
from arnn_tf.tuning.tuner import make_oracle

SPACE = {
    "about": "a small space for tests",
    "parameters": {
        "learning_rate": {"min": 0.01, "max": 0.2, "sampling": "log"},
        "l2": {"min": 1e-7, "max": 1e-4, "sampling": "log"},
        "label_map": {"values": ["first", "random:2"]},
        "image_size": {"values": [0, 24, 96]},
        "batch_size": {"values": [4, 8]},
        "lr_schedule": {"values": ["paper", "cosine"]},
        "augment": {"values": [[], ["flip"]]},
    },
}
TINY = RECIPES["paper"].replace(backbone="tiny_cnn", weights="none")
"""The base recipe of these tests: the paper's settings on the tiny untrained backbone."""


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes, dark and bright 16x16 squares: 12 train and 4 test images each."""
    root = tmp_path_factory.mktemp("folder")
    for split, count in (("train", 12), ("test", 4)):
        for i in range(count):
            for name, value in (("dark", 10 + i), ("bright", 240 - i)):
                path = root / split / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((16, 16, 3), value, dtype=np.uint8)).save(path)
    return root


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps(SPACE))
    return path


def tune_args(folder, space, out, *extra):
    return build_parser().parse_args([
        "tune", "--task", f"folder:{folder}", "--backbone", "tiny_cnn", "--weights", "none",
        "--space", str(space), "--val-size", "4", "--out", str(out), *extra])


def toy_task(images):
    """A two-class task serving ``images`` (labels alternate) as both of its splits."""
    labels = np.arange(len(images), dtype=np.int32) % 2
    return ImageTask("toy", images.shape[1:], ("a", "b"),
                lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))


def count_fits(monkeypatch, fail_on=None):
    """Counts `ReprogrammingHyperModel.fit` calls; the ``fail_on``-th call is interrupted like
    Ctrl-C."""
    calls = []
    fit = ReprogrammingHyperModel.fit

    def counting_fit(self, hp, model, *args, **kwargs):
        calls.append(dict(hp.values))
        if len(calls) == fail_on:
            raise KeyboardInterrupt
        return fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(ReprogrammingHyperModel, "fit", counting_fit)
    return calls


@pytest.fixture(scope="module")
def search(image_folder, space_file, tmp_path_factory):
    """A finished two-trial random search."""
    out = tmp_path_factory.mktemp("search")
    args = tune_args(image_folder, space_file, out, "--max-trials", "2", "--steps", "3")
    return out, tune_command(args)


def test_space_entries_are_recipe_fields():
    space = SearchSpace.from_dict(SPACE)
    assert [p.name for p in space.parameters] == list(SPACE["parameters"])
    assert space.fit_to(48)["image_size"].values == (0, 24)
    assert space["augment"].values == ("none", "flip")
    assert SearchSpace.load(DEFAULT_SPACE_FILE).fit_to(224)["learning_rate"].sampling == "log"
    recipe = space.recipe(TINY, {"learning_rate": 0.1, "l2": 1e-5, "label_map": "random:2",
                                 "image_size": 0, "batch_size": 4, "lr_schedule": "cosine",
                                 "augment": "flip"})
    assert recipe == TINY.replace(learning_rate=0.1, l2=1e-5, label_map="random:2", batch_size=4,
                                  lr_schedule="cosine", augment=("flip",))
    nulls = SearchSpace.from_dict({"parameters": {"linf_bound": {"values": [None, 0.5]},
                                                  "conceal": {"value": None}}})
    assert nulls["linf_bound"].values == (0.0, 0.5) and nulls["conceal"].value == "none"
    assert nulls.recipe(TINY, {"linf_bound": 0.0, "conceal": "none"}) == TINY


def test_space_entry_that_is_not_a_recipe_field_is_refused():
    with pytest.raises(ValueError, match="'lr' is not a recipe field") as error:
        SearchSpace.from_dict({"parameters": {"lr": {"value": 1.0}}})
    assert all(field in str(error.value) for field in FIELDS)
    with pytest.raises(ValueError, match="'backbone' is the same for every trial"):
        SearchSpace.from_dict({"parameters": {"backbone": {"value": "tiny_cnn"}}})
    with pytest.raises(ValueError, match="'directions' is the same for every trial"):
        SearchSpace.from_dict({"parameters": {"directions": {"values": [5, 10]}}})
    for bad in ({"parameters": {"l2": {"min": 1e-3, "max": 1e-6, "sampling": "log"}}},
                {"parameters": {"batch_size": {"values": [16, 16.5]}}},
                {"parameters": {"batch_size": {"value": None}}},
                {"parameters": {"full_program": {"values": [0, 1]}}},
                {"parameters": {"label_map": {"min": 1, "max": 2}}}):
        with pytest.raises(ValueError):
            SearchSpace.from_dict(bad)


def test_space_check_refuses_trials_no_run_can_use():
    hypermodel = ReprogrammingHyperModel(TINY, toy_task(np.zeros((20, 16, 16, 3), np.uint8)),
                                         SearchSpace(()), steps_per_epoch=5)

    def check(parameters, base=TINY):
        SearchSpace.from_dict({"parameters": parameters}).check(
            base, lambda recipe: hypermodel.check_trial(recipe, 1))

    check({"lr_schedule": {"value": "cosine"}, "warmup_steps": {"min": 0, "max": 4}})
    with pytest.raises(ValueError, match="lr_schedule 'paper', warmup_steps 4.*cosine"):
        check({"lr_schedule": {"values": ["paper", "cosine"]}, "warmup_steps": {"values": [0, 4]}})
    with pytest.raises(ValueError, match="warmup_steps 5 leaves nothing"):
        check({"lr_schedule": {"value": "cosine"}, "warmup_steps": {"value": 5}})
    with pytest.raises(ValueError, match="first:600"):
        check({"label_map": {"values": ["first", "first:600"]}})
    with pytest.raises(ValueError, match="image_size 224 does not fit"):
        check({}, base=RECIPES["mnist"].replace(backbone="tiny_cnn", weights="none"))


def test_hypermodel_applies_sampled_values():
    task = toy_task(np.zeros((20, 16, 16, 3), dtype=np.uint8))
    space = SearchSpace.from_dict(SPACE).fit_to(48)
    hypermodel = ReprogrammingHyperModel(TINY.replace(seed=3), task, space)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    hp.values.update(learning_rate=0.123, l2=2e-5, label_map="random:2", image_size=24,
                     batch_size=8, lr_schedule="paper")
    model = hypermodel.build(hp)
    assert model.program.l2 == pytest.approx(2e-5) and model.encoder.image_size == (24, 24)
    assert model.label_map.groups == parse_label_map("random:2", 2, seed=3)
    schedule = model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["initial_learning_rate"] == pytest.approx(0.123)
    assert schedule["decay_steps"] == 2 * 3  # 20 images at batch 8 is 3 steps per epoch
    assert hypermodel.recipe_for(hp.values).epochs == 1  # one pass over the train split
    history = hypermodel.fit(hp, model, epochs=1, verbose=0)
    assert set(history.history) >= {"accuracy", "val_accuracy", "loss", "val_loss"}


def test_hypermodel_trains_the_searched_recipe_fields():
    task = toy_task(np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8))
    space = SearchSpace.from_dict({"parameters": {
        "lr_schedule": {"value": "cosine"}, "warmup_steps": {"value": 2},
        "full_program": {"value": True}, "image_size": {"value": 48},
        "augment": {"value": ["flip", "crop"]}, "ema": {"value": 0.9},
        "label_map": {"value": "linear"}, "batch_size": {"value": 4}}})
    hypermodel = ReprogrammingHyperModel(TINY, task, space, steps_per_epoch=3, epochs=2)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    recipe = hypermodel.recipe_for(hp.values)
    assert recipe == TINY.replace(name="paper-tuned", lr_schedule="cosine", warmup_steps=2,
                                  full_program=True, image_size=48, augment=("flip", "crop"),
                                  ema=0.9, label_map="linear", batch_size=4, steps=6)
    assert model.encoder.full_program and model.encoder.image_size == (48, 48)
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert (schedule["config"]["warmup_steps"], schedule["config"]["decay_steps"]) == (2, 6 - 2)
    assert model.optimizer.use_ema
    history = hypermodel.fit(hp, model, epochs=2, verbose=0)
    assert len(history.history["val_accuracy"]) == 2


def test_hypermodel_computes_frequency_label_maps():
    task = toy_task(np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8))
    space = SearchSpace.from_dict({"parameters": {"label_map": {"value": "frequency"},
                                                  "batch_size": {"value": 4}}})
    hypermodel = ReprogrammingHyperModel(TINY, task, space, steps_per_epoch=2)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    probabilities, seen = source_probabilities(source_network(model), task.dataset("train", 100),
                                               5000)
    expected = frequency_map(probabilities.argmax(axis=1), seen, 2, probabilities=probabilities)
    hypermodel.fit(hp, model, epochs=1, verbose=0)
    assert model.label_map.groups == expected


def test_holdout_split_is_disjoint_and_leaves_test_out():
    images = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1).repeat(4, axis=1)
    images = images.reshape(30, 2, 2, 1)

    def load(split):
        train = split == "train"
        return tf.data.Dataset.from_tensor_slices(
            (images if train else images[:0], np.zeros(len(images) if train else 0, np.int32)))

    parts = (TaskPart("one", 0, 1),)
    split = holdout_split(ImageTask("toy", (2, 2, 1), ("a",), load, parts=parts), 5, seed=1)
    train = [int(x[0, 0, 0]) for x, _ in split.dataset("train", 1).unbatch()]
    held = [int(x[0, 0, 0]) for x, _ in split.dataset("test", 1).unbatch()]
    assert len(held) == 5 and split.num_examples("train") == 25
    assert sorted(train + held) == list(range(30))
    assert split.parts == parts  # a combined task's trials keep its per-part signatures


def test_tune_command_starts_from_the_paper_recipe_with_the_options_applied(monkeypatch,
                                                                            tmp_path):
    searches = []
    monkeypatch.setattr(tuning_search, "tune", lambda base, out, space, **options: searches.append(
        (base, options)) or {})
    tune_command(build_parser().parse_args(["tune", "--backbone", "tiny_cnn", "--out",
                                            str(tmp_path)]))
    tune_command(build_parser().parse_args(["tune", "--recipe", "mnist", "--seed", "4", "--out",
                                            str(tmp_path), "--tuner", "hyperband", "--steps",
                                            "9"]))
    assert [base for base, _ in searches] == [RECIPES["paper"].replace(backbone="tiny_cnn"),
                                              RECIPES["mnist"].replace(seed=4)]
    assert (searches[1][1]["tuner"], searches[1][1]["steps"]) == ("hyperband", 9)
    with pytest.raises(ValueError, match="--task folder:"):
        tune_command(build_parser().parse_args(["tune", "--recipe", "folder", "--out",
                                                str(tmp_path)]))


def test_search_writes_results(search, image_folder):
    out, summary = search
    best = json.loads((out / "best_hparams.json").read_text())
    assert best == summary
    assert set(best["hyperparameters"]) == set(SPACE["parameters"])
    assert best["hyperparameters"]["image_size"] in (0, 24)  # 96 does not fit the 48-pixel frame
    assert 0.0 <= best["value"] <= 1.0 and 0.0 <= best["test_accuracy"] <= 1.0
    assert best["test_examples"] == 8
    assert best["train_command"] == f"arnn train --recipe {out / BEST_RECIPE_FILE}"
    with open(out / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["trial_id"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "COMPLETED" and row["val_accuracy"] != "" for row in rows)
    assert set(SPACE["parameters"]) <= set(rows[0])
    recipe = load_recipe(str(out / BEST_RECIPE_FILE))
    space = SearchSpace.from_dict(SPACE)
    assert recipe == space.recipe(TINY, best["hyperparameters"]).replace(
        name="paper-tuned", task=f"folder:{image_folder}", steps=3)
    saved = SavedProgram.load(out / "best_program")
    assert saved.backbone.name == "tiny_cnn" and saved.label_map == recipe.label_map
    assert saved.recipe == recipe.to_dict()
    assert saved.metrics["test_accuracy"] == best["test_accuracy"]


def test_best_recipe_trains_again_with_arnn_train(search, tmp_path):
    out, _ = search
    recipe = load_recipe(str(out / BEST_RECIPE_FILE))
    assert main(["train", "--recipe", str(out / BEST_RECIPE_FILE), "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == recipe.steps == 3
    assert SavedProgram.load(tmp_path / "program").recipe == recipe.to_dict()


def test_best_program_works_with_arnn_evaluate(search, capsys):
    out, summary = search
    capsys.readouterr()
    assert main(["evaluate", "--program", str(out / "best_program"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy"])


def test_trial_checkpoints_hold_the_program_only(search):
    out, _ = search
    program_bytes = max(p.stat().st_size for p in (out / "best_program").iterdir())
    backbone = build_backbone("tiny_cnn", None, seed=0)
    backbone_bytes = sum(w.numpy().nbytes for w in backbone.weights)
    trial_files = [p for p in (out / PROJECT_NAME).rglob("*") if p.is_file()]
    assert any(p.name == "W.npy" for p in trial_files)
    assert all(p.stat().st_size <= program_bytes for p in trial_files)
    assert sum(p.stat().st_size for p in trial_files) < backbone_bytes
    assert not [p for p in out.rglob("*")
                if p.suffix in (".h5", ".keras") or "checkpoint" in p.name]


def hparams_plugin_data(folder):
    """The parsed hparams plugin data of every summary in the event files directly in
    ``folder``."""
    found = []
    for events in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                data = value.metadata.plugin_data
                if data.plugin_name == "hparams":
                    found.append(plugin_data_pb2.HParamsPluginData.FromString(data.content))
    return found


def test_hparams_dashboard_data_in_event_files(search):
    out, _ = search
    [experiment] = hparams_plugin_data(out / "logs")
    names = {info.name for info in experiment.experiment.hparam_infos}
    assert names == set(SPACE["parameters"])
    [metric] = experiment.experiment.metric_infos
    assert (metric.name.group, metric.name.tag) == ("validation", "epoch_accuracy")
    for trial_id in ("0", "1"):
        [session] = hparams_plugin_data(out / "logs" / trial_id)
        assert set(session.session_start_info.hparams) == set(SPACE["parameters"])
        assert list((out / "logs" / trial_id / "validation").glob("events.out.tfevents.*"))


def test_rerun_resumes_without_redoing_finished_trials(image_folder, space_file, tmp_path,
                                                       monkeypatch):
    def run(steps):
        tune_command(tune_args(image_folder, space_file, tmp_path, "--max-trials", "2",
                               "--steps", steps))

    calls = count_fits(monkeypatch, fail_on=2)
    with pytest.raises(KeyboardInterrupt):
        run("2")
    interrupted = calls[1]
    calls.clear()
    run("2")
    assert calls == [interrupted]  # only the interrupted trial runs again
    calls.clear()
    run("2")
    assert calls == []
    with pytest.raises(ValueError, match="steps"):
        run("5")


def test_hyperband_continues_from_the_saved_program(image_folder, space_file, tmp_path,
                                                    monkeypatch):
    calls = count_fits(monkeypatch)
    tune_command(tune_args(image_folder, space_file, tmp_path, "--tuner", "hyperband",
                           "--max-trials", "4", "--epochs", "3"))
    assert [c["tuner/epochs"] for c in calls] == [1, 1, 1, 3]
    continued = calls[3]["tuner/trial_id"]
    with open(tmp_path / "leaderboard.csv") as f:
        rows = {row["trial_id"]: row for row in csv.DictReader(f)}
    assert rows["3"]["tuner/trial_id"] == continued and rows["3"]["status"] == "COMPLETED"
    assert load_recipe(str(tmp_path / BEST_RECIPE_FILE)).epochs in (1, 3)


def test_make_oracle_kinds():
    pytest.importorskip("sklearn")  # the Bayesian oracle needs the keras-tuner[bayesian] extra
    assert isinstance(make_oracle("bayesian", "val_accuracy", 3, epochs=1),
                      keras_tuner.oracles.BayesianOptimizationOracle)
    assert make_oracle("hyperband", "val_loss", 5, epochs=9).max_trials == 5
    with pytest.raises(ValueError, match="grid"):
        make_oracle("grid", "val_accuracy", 3, epochs=1)


def test_a_black_box_base_recipe_is_refused(tmp_path):
    from arnn_tf.tuning.search import tune

    with pytest.raises(ValueError, match="trials train white-box"):
        tune(TINY.replace(trainer="black_box"), tmp_path, SearchSpace(()))
