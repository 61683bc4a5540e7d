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
from arnn_tf.cli import main
from arnn_tf.label_maps import (frequency_map, parse_label_map, source_network,
                                source_probabilities)
from arnn_tf.parsers import build_parser
from arnn_tf.programs import SavedProgram
from arnn_tf.settings import DEFAULT_SPACE_FILE
from arnn_tf.tasks import Task
from arnn_tf.tuning.command import PROJECT_NAME, tune_command
from arnn_tf.tuning.holdout import holdout_split
from arnn_tf.tuning.hypermodel import ReprogrammingHyperModel
from arnn_tf.tuning.space import PARAMETER_DEFAULTS, SearchSpace
from arnn_tf.tuning.tuner import make_oracle

SPACE = {
    "about": "a small space for tests",
    "parameters": {
        "learning_rate": {"min": 0.01, "max": 0.2, "sampling": "log"},
        "l2": {"min": 1e-7, "max": 1e-4, "sampling": "log"},
        "label_map": {"values": ["first", "random:2"]},
        "image_size": {"values": [0, 24, 96]},
        "batch_size": {"values": [4, 8]},
    },
}


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
    return build_parser().parse_args(["tune", "--task", f"folder:{folder}", "--backbone", "tiny_cnn", "--weights", "none",
                              "--space", str(space), "--val-size", "4", "--out", str(out), *extra])


def count_fits(monkeypatch, fail_on=None):
    """Counts `ReprogrammingHyperModel.fit` calls; the ``fail_on``-th call is interrupted like Ctrl-C."""
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
    summary = tune_command(tune_args(image_folder, space_file, out, "--max-trials", "2", "--steps", "3"))
    return out, summary


def test_space_file_defaults_and_errors(tmp_path):
    space = SearchSpace.from_dict(SPACE)
    assert space["border_width"].value == 0 and space["linf_bound"].value == 0.0
    fitted = space.fit_to(48, 2)
    assert fitted["image_size"].values == (0, 24)
    assert SearchSpace.load(DEFAULT_SPACE_FILE).fit_to(224, 10)["learning_rate"].sampling == "log"
    for bad in ({"parameters": {"lr": {"value": 1.0}}},
                {"parameters": {"l2": {"min": 1e-3, "max": 1e-6, "sampling": "log"}}},
                {"parameters": {"batch_size": {"values": [16, 16.5]}}},
                {"parameters": {"label_map": {"min": 1, "max": 2}}}):
        with pytest.raises(ValueError):
            SearchSpace.from_dict(bad)
    with pytest.raises(ValueError, match="first:600"):
        SearchSpace.from_dict({"parameters": {"label_map": {"value": "first:600"}}}).fit_to(48, 2)


def test_hypermodel_applies_sampled_values():
    images = np.zeros((20, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(20, dtype=np.int32) % 2
    task = Task("toy", (16, 16, 3), ("a", "b"), lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))
    space = SearchSpace.from_dict(SPACE).fit_to(48, 2)
    hypermodel = ReprogrammingHyperModel(build_backbone("tiny_cnn", None, seed=0), task, space, seed=3)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    hp.values.update(learning_rate=0.123, l2=2e-5, label_map="random:2", image_size=24, batch_size=8)
    model = hypermodel.build(hp)
    assert model.program.l2 == pytest.approx(2e-5) and model.program.image_size == (24, 24)
    assert model.label_map.groups == parse_label_map("random:2", 2, seed=3)
    schedule = model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["initial_learning_rate"] == pytest.approx(0.123)
    assert schedule["decay_steps"] == 2 * 3  # 20 images at batch 8 is 3 steps per epoch
    history = hypermodel.fit(hp, model, epochs=1, verbose=0)
    assert set(history.history) >= {"accuracy", "val_accuracy", "loss", "val_loss"}


def test_hypermodel_computes_frequency_label_maps():
    images = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(20, dtype=np.int32) % 2
    task = Task("toy", (16, 16, 3), ("a", "b"), lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))
    space = SearchSpace.from_dict({"parameters": {"label_map": {"value": "frequency"},
                                                         "batch_size": {"value": 4}}}).fit_to(48, 2)
    hypermodel = ReprogrammingHyperModel(build_backbone("tiny_cnn", None, seed=0), task, space,
                                                steps_per_epoch=2)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    probabilities, seen = source_probabilities(source_network(model), task.dataset("train", 100), 5000)
    expected = frequency_map(probabilities.argmax(axis=1), seen, 2, probabilities=probabilities)
    hypermodel.fit(hp, model, epochs=1, verbose=0)
    assert model.label_map.groups == expected


def test_holdout_split_is_disjoint_and_leaves_test_out():
    images = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1).repeat(4, axis=1).reshape(30, 2, 2, 1)
    task = Task("toy", (2, 2, 1), ("a",), lambda split: tf.data.Dataset.from_tensor_slices(
        (images if split == "train" else images[:0], np.zeros(len(images) if split == "train" else 0, np.int32))))
    split = holdout_split(task, 5, seed=1)
    train = [int(x[0, 0, 0]) for x, _ in split.dataset("train", 1).unbatch()]
    held = [int(x[0, 0, 0]) for x, _ in split.dataset("test", 1).unbatch()]
    assert len(held) == 5 and split.num_examples("train") == 25 and sorted(train + held) == list(range(30))


def test_search_writes_results(search):
    out, summary = search
    best = json.loads((out / "best_hparams.json").read_text())
    assert best == summary
    assert set(best["hyperparameters"]) == set(PARAMETER_DEFAULTS)
    assert best["hyperparameters"]["image_size"] in (0, 24)  # 96 does not fit the 48-pixel frame
    assert 0.0 <= best["value"] <= 1.0 and 0.0 <= best["test_accuracy"] <= 1.0 and best["test_examples"] == 8
    assert best["train_command"].startswith("arnn train --task folder:")
    with open(out / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["trial_id"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "COMPLETED" and row["val_accuracy"] != "" for row in rows)
    assert {"learning_rate", "l2", "label_map", "image_size", "batch_size"} <= set(rows[0])
    saved = SavedProgram.load(out / "best_program")
    assert saved.backbone.name == "tiny_cnn" and saved.label_map_spec == best["hyperparameters"]["label_map"]
    assert saved.metrics["test_accuracy"] == best["test_accuracy"]


def test_best_program_works_with_arnn_evaluate(search, capsys):
    out, summary = search
    capsys.readouterr()
    assert main(["evaluate", "--program", str(out / "best_program"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(summary["test_accuracy"])


def test_trial_checkpoints_hold_the_program_only(search):
    out, _ = search
    program_bytes = max(p.stat().st_size for p in (out / "best_program").iterdir())
    backbone_bytes = sum(w.numpy().nbytes for w in build_backbone("tiny_cnn", None, seed=0).weights)
    trial_files = [p for p in (out / PROJECT_NAME).rglob("*") if p.is_file()]
    assert any(p.name == "W.npy" for p in trial_files)
    assert all(p.stat().st_size <= program_bytes for p in trial_files)
    assert sum(p.stat().st_size for p in trial_files) < backbone_bytes
    assert not [p for p in out.rglob("*") if p.suffix in (".h5", ".keras") or "checkpoint" in p.name]


def hparams_plugin_data(folder):
    """The parsed hparams plugin data of every summary in the event files directly in ``folder``."""
    found = []
    for events in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    found.append(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
    return found


def test_hparams_dashboard_data_in_event_files(search):
    out, _ = search
    [experiment] = hparams_plugin_data(out / "logs")
    assert {info.name for info in experiment.experiment.hparam_infos} == set(PARAMETER_DEFAULTS)
    [metric] = experiment.experiment.metric_infos
    assert (metric.name.group, metric.name.tag) == ("validation", "epoch_accuracy")
    for trial_id in ("0", "1"):
        [session] = hparams_plugin_data(out / "logs" / trial_id)
        assert set(session.session_start_info.hparams) == set(PARAMETER_DEFAULTS)
        assert list((out / "logs" / trial_id / "validation").glob("events.out.tfevents.*"))


def test_rerun_resumes_without_redoing_finished_trials(image_folder, space_file, tmp_path, monkeypatch):
    calls = count_fits(monkeypatch, fail_on=2)
    with pytest.raises(KeyboardInterrupt):
        tune_command(tune_args(image_folder, space_file, tmp_path, "--max-trials", "2", "--steps", "2"))
    interrupted = calls[1]
    calls.clear()
    tune_command(tune_args(image_folder, space_file, tmp_path, "--max-trials", "2", "--steps", "2"))
    assert calls == [interrupted]  # only the interrupted trial runs again
    calls.clear()
    tune_command(tune_args(image_folder, space_file, tmp_path, "--max-trials", "2", "--steps", "2"))
    assert calls == []
    with pytest.raises(ValueError, match="steps"):
        tune_command(tune_args(image_folder, space_file, tmp_path, "--max-trials", "2", "--steps", "5"))


def test_hyperband_continues_from_the_saved_program(image_folder, space_file, tmp_path, monkeypatch):
    calls = count_fits(monkeypatch)
    tune_command(tune_args(image_folder, space_file, tmp_path, "--tuner", "hyperband", "--max-trials", "4",
                                  "--epochs", "3"))
    assert [c["tuner/epochs"] for c in calls] == [1, 1, 1, 3]
    continued = calls[3]["tuner/trial_id"]
    with open(tmp_path / "leaderboard.csv") as f:
        rows = {row["trial_id"]: row for row in csv.DictReader(f)}
    assert rows["3"]["tuner/trial_id"] == continued and rows["3"]["status"] == "COMPLETED"


def test_make_oracle_kinds():
    pytest.importorskip("sklearn")  # keras-tuner's Bayesian oracle needs the keras-tuner[bayesian] extra
    assert isinstance(make_oracle("bayesian", "val_accuracy", 3, epochs=1),
                      keras_tuner.oracles.BayesianOptimizationOracle)
    assert make_oracle("hyperband", "val_loss", 5, epochs=9).max_trials == 5
    with pytest.raises(ValueError, match="grid"):
        make_oracle("grid", "val_accuracy", 3, epochs=1)
