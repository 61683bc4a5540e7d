"""Frequency (FLM) and iterative (ILM) label mapping: known answers and training integration."""

import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.label_maps.frequency import (
    FrequencyLabelMapping,
    frequency_map,
    source_network,
    source_predictions,
    source_probabilities,
)
from arnn_tf.label_maps.specs import describe_label_map, parse_label_map
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from fitting import fit


def test_frequency_map_assigns_the_most_predicted_class_greedily():
    # task class 0: ImageNet 5 x4, 9 x1; class 1: ImageNet 5 x3, 9 x2; class 2: ImageNet 7 x2
    labels = np.array([0] * 5 + [1] * 5 + [2] * 2)
    predictions = np.array([5, 5, 5, 5, 9, 5, 5, 5, 9, 9, 7, 7])
    assert frequency_map(predictions, labels, 3) == [[5], [9], [7]]


def test_frequency_map_with_several_classes_each_and_unseen_classes():
    labels = np.array([0, 0, 0, 1, 1])
    predictions = np.array([3, 3, 4, 3, 8])
    groups = frequency_map(predictions, labels, 3, per_class=2, num_source=10)
    assert groups[0] == [3, 4] and 8 in groups[1]
    flat = [c for g in groups for c in g]
    assert len(flat) == len(set(flat)) == 6
    assert groups[2] == [1, 2]  # never seen: the lowest free indices, deterministically


def test_frequency_map_ranks_tied_counts_by_probability_mass():
    labels = np.array([0, 0, 1, 1])
    predictions = np.array([3, 3, 8, 8])
    probabilities = np.full((4, 10), 0.01)
    probabilities[:2, 6] = 0.3  # class 0's images put mass on 6 and, less, 1; class 1's on 2
    probabilities[:2, 1] = 0.2
    probabilities[2:, 2] = 0.4
    groups = frequency_map(predictions, labels, 2, per_class=3, num_source=10, probabilities=probabilities)
    assert groups == [[1, 3, 6], [0, 2, 8]]  # counts decide first; 0 is the lowest index left for class 1
    assert frequency_map(predictions, labels, 2, per_class=3, num_source=10) == [[0, 1, 3], [2, 4, 8]]


def test_data_driven_specs_start_from_first_k():
    assert parse_label_map("frequency", 3) == [[0], [1], [2]]
    assert parse_label_map("iterative:2", 2) == [[0, 1], [2, 3]]


def test_describe_label_map_names_task_and_imagenet_classes():
    assert describe_label_map([[0], [281, 285]], ["a", "b"]) == "a <- tench (0); b <- tabby (281) + Egyptian cat (285)"
    assert describe_label_map([[3], [1]], num_source=10) == "0 <- 3; 1 <- 1"


def toy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 12, 12, 1)).astype("uint8")
    labels = np.arange(48, dtype="int32") % 3
    task = ImageTask("toy", (12, 12, 1), ("a", "b", "c"), lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))
    return task


def test_frequency_mapping_callback_sets_the_flm_of_the_current_program():
    task = toy()
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=2), (12, 12, 1), 3, label_map="frequency:2")
    batches = task.dataset("train", 16)
    probabilities, labels = source_probabilities(source_network(model), batches, 48)
    assert probabilities.shape == (48, 1000) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    predictions, _ = source_predictions(source_network(model), batches, 48)
    assert (predictions == probabilities.argmax(axis=1)).all() and (labels == np.arange(48) % 3).all()
    callback = FrequencyLabelMapping(batches, per_class=2)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_train_batch_begin(0)
    assert model.label_map.groups == frequency_map(predictions, labels, 3, 2, probabilities=probabilities)
    # the callback's network is built once and follows the program as it changes
    model.program.weight.assign(np.random.default_rng(1).normal(0, 3, model.program.weight.shape))
    moved, _ = source_probabilities(source_network(model), batches, 48)
    assert not (moved.argmax(axis=1) == predictions).all()
    assert callback.remap() == frequency_map(moved.argmax(axis=1), labels, 3, 2, probabilities=moved)


def test_iterative_mapping_recomputes_every_epoch(monkeypatch):
    task = toy()
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=2), (12, 12, 1), 3,
                                     label_map="iterative")
    calls = []
    original = FrequencyLabelMapping.remap
    monkeypatch.setattr(FrequencyLabelMapping, "remap", lambda self: calls.append(1) or original(self))
    fit(model, task, epochs=3, batch_size=16, label_map="iterative")
    assert len(calls) == 3  # before training (epoch 1), then before epochs 2 and 3
    model_f = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=2), (12, 12, 1), 3)
    calls.clear()
    fit(model_f, task, epochs=2, batch_size=16, label_map="frequency")
    assert len(calls) == 1


def test_a_resumed_iterative_run_remaps_at_the_same_steps_as_an_uninterrupted_one(monkeypatch, tmp_path):
    task = toy()  # 48 training images: 3 steps per epoch of 16
    steps_at_remap = []
    original = FrequencyLabelMapping.remap
    monkeypatch.setattr(FrequencyLabelMapping, "remap", lambda self: steps_at_remap.append(
        int(self.model.optimizer.iterations.numpy())) or original(self))

    def run(steps):
        model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=2), (12, 12, 1), 3,
                                         label_map="iterative")
        fit(model, task, steps=steps, batch_size=16, label_map="iterative", checkpoint_dir=tmp_path,
            checkpoint_every=1)

    run(4)  # stopped one step into its second epoch
    assert steps_at_remap == [0, 3]
    steps_at_remap.clear()
    run(8)  # resumed at step 4: the next epochs start at steps 6 and 9
    assert steps_at_remap == [6]


def test_a_verbose_remap_shows_progress_and_the_new_map(capsys):
    task = toy()
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=2), (12, 12, 1), 3, label_map="frequency")
    fit(model, task, steps=1, batch_size=16, label_map="frequency", verbose=True)
    out = capsys.readouterr().out
    assert "label map before step 0: the network's top-1 ImageNet class for 48 training images" in out
    assert "48/48" in out
    assert f"label map: {describe_label_map(model.label_map.groups, task.class_names)}" in out
