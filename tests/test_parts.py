"""A task of several parts: a seeded sampler draws each batch across the parts, each part in
its own slot; an unshuffled split gives every example once; a hundred tiny parts batch."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from fitting import fit

from arnn_tf.black_box import BlackBoxTrainer, LocalQuery
from arnn_tf.export.writer import export_programs
from arnn_tf.label_maps.frequency import FrequencyLabelMapping
from arnn_tf.modalities.image.files import read_images
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.models.reprogrammed import part_label_maps
from arnn_tf.models.reprogrammed import frame_key
from arnn_tf.models.task_unknown import task_unknown
from arnn_tf.programs.answers import predict_named
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import Recipe
from arnn_tf.runs import build_model, saved_program
from arnn_tf.tasks.parts import MultiPartTask
from arnn_tf.training.evaluation import evaluate_parts, evaluate_task_unknown


def numbered_task(name, shape, num_classes, n):
    """A task whose image i is filled with i (so examples can be told apart)."""
    images = np.broadcast_to(np.arange(n, dtype="uint8")[:, None, None, None], (n, *shape))
    labels = (np.arange(n) % num_classes).astype("int32")
    return ImageTask(name, shape, tuple(str(i) for i in range(num_classes)),
                     lambda split: tf.data.Dataset.from_tensor_slices((images.copy(), labels)))


def two_parts(sampling="uniform"):
    parts = (numbered_task("small", (4, 4, 1), 2, 10), numbered_task("big", (6, 5, 3), 3, 90))
    return MultiPartTask("small+big", parts, sampling)


def batches(task, count, **options):
    data = task.dataset("train", 16, shuffle=True, repeat=True, **options)
    return [(tuple(x.numpy() for x in inputs), labels.numpy())
            for inputs, labels in data.take(count)]


def test_each_part_has_its_own_slot_and_labels_follow_in_part_order():
    (small, big), labels = batches(two_parts(), 1)[0]
    assert small.shape[1:] == (4, 4, 1) and big.shape[1:] == (6, 5, 3)
    assert len(small) + len(big) == 16 == len(labels)
    assert set(labels[: len(small)]) <= {0, 1} and set(labels[len(small):]) <= {2, 3, 4}


def test_the_same_seed_replays_the_same_draw_and_skipping_resumes_it():
    first, again = batches(two_parts(), 6, seed=3), batches(two_parts(), 6, seed=3)
    for (inputs, labels), (inputs_again, labels_again) in zip(first, again):
        np.testing.assert_array_equal(labels, labels_again)
        for x, y in zip(inputs, inputs_again):
            np.testing.assert_array_equal(x, y)
    resumed = two_parts().dataset("train", 16, shuffle=True, repeat=True, seed=3).skip(4)
    np.testing.assert_array_equal(next(iter(resumed))[1].numpy(), first[4][1])
    assert any(len(a[1]) != len(b[1]) or (a[1] != b[1]).any()
               for a, b in zip(first, batches(two_parts(), 6, seed=4)))


@pytest.mark.parametrize("sampling, small_share", [("uniform", 0.5), ("proportional", 0.1)])
def test_parts_are_drawn_uniformly_or_by_size(sampling, small_share):
    drawn = batches(two_parts(sampling), 40)
    share = np.mean([len(inputs[0]) / 16 for inputs, _ in drawn])
    assert abs(share - small_share) < 0.06


def test_an_unshuffled_split_gives_every_example_once_in_part_order():
    task = two_parts()
    data = list(task.dataset("test", 32))
    assert sum(len(labels) for _, labels in data) == task.num_examples("test") == 100
    small = np.concatenate([inputs[0].numpy() for inputs, _ in data])
    assert sorted(small[:, 0, 0, 0]) == list(range(10))


def test_a_hundred_tiny_parts_batch_and_sample():
    parts = tuple(numbered_task(f"p{i}", (2, 2, 1), 2, 4) for i in range(100))
    task = MultiPartTask("hundred", parts)
    inputs, labels = next(iter(task.dataset("train", 32, shuffle=True, repeat=True)))
    assert len(inputs) == 100 and sum(len(x) for x in inputs) == 32 == len(labels)
    assert task.parts[99].first_class == 198 and task.num_classes == 200
    sample = list(task.sample("train", 1, 50))
    assert [len(labels) for _, labels in sample] == [50, 50]


def test_a_task_of_one_part_or_an_unknown_sampling_is_refused():
    with pytest.raises(ValueError, match="at least two part tasks"):
        MultiPartTask("one", two_parts().part_tasks[:1])
    with pytest.raises(ValueError, match="unknown part sampling 'sized'"):
        MultiPartTask("two", two_parts().part_tasks, "sized")


def tiny_recipe(**fields):
    return Recipe(backbone="tiny_cnn", weights="none").replace(**fields)


def test_fixed_maps_give_the_parts_disjoint_imagenet_classes():
    first, second = part_label_maps("first", [3, 2])
    assert first.groups == [[0], [1], [2]] and second.groups == [[3], [4]]
    drawn = [g for m in part_label_maps("random", [3, 2], seed=5) for g in m.groups]
    assert len({c for g in drawn for c in g}) == 5
    learned = part_label_maps("linear:first", [3, 2])
    assert [m.num_classes for m in learned] == [3, 2]


def test_a_frequency_map_is_one_greedy_map_over_every_parts_classes():
    task = two_parts()
    model = build_model(tiny_recipe(label_map="frequency"), task)
    mapping = FrequencyLabelMapping([t.sample("train", 10, 5) for t in task.part_tasks],
                                    max_images=[10, 10])
    mapping.set_model(model)
    mapping.on_train_begin()
    groups = mapping.remap()
    assert len(groups) == 5 and len({c for g in groups for c in g}) == 5
    assert [m.groups for m in model.label_maps] == [groups[:2], groups[2:]]


def test_image_parts_train_with_a_frequency_map_and_answer_mirror_averaged():
    task = two_parts()
    model = build_model(tiny_recipe(label_map="frequency", flip_average=True), task)
    result = fit(model, task, steps=3, batch_size=8, label_map="frequency")
    assert result.steps == 3
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 256, (2, *t.image_shape)).astype("uint8") for t in task.part_tasks]
    mirrored = [x[:, :, ::-1] for x in inputs]
    one_view = model(inputs, training=True)
    both = (one_view + model(mirrored, training=True)) / 2
    np.testing.assert_allclose(model(inputs), both, atol=1e-6)
    assert not np.allclose(one_view, both, atol=1e-4)


@pytest.mark.parametrize("per_image", [False, True])
def test_black_box_training_of_parts_asks_only_the_query_function_for_every_part(per_image):
    task = two_parts()
    model = build_model(tiny_recipe(label_map="frequency"), task)
    twin = keras.models.clone_model(model.backbone)
    twin.set_weights(model.backbone.get_weights())
    expected = FrequencyLabelMapping([t.sample("train", 100, 25, seed=0) for t in task.part_tasks],
                                     max_images=[10, 90])
    expected.set_model(model)
    expected.on_train_begin()
    groups = expected.remap()  # from the model's own network, W = 0

    def refuse(*args, **kwargs):
        raise AssertionError("the model's own backbone was called")

    model.backbone.call = refuse
    trainer = BlackBoxTrainer(LocalQuery(twin), directions=2, per_image_directions=per_image)
    recipe = tiny_recipe(label_map="frequency", trainer="black_box", steps=3, batch_size=8)
    trainer.fit(model, task, recipe, verbose=False)
    assert [m.groups for m in model.label_maps] == [groups[:2], groups[2:]]
    assert trainer.queries == 100 + 3 * 8 * (2 + 1)
    assert np.abs(keras.ops.convert_to_numpy(model.program.weight)).sum() > 0


def test_a_program_of_image_parts_answers_a_file_with_the_task_unknown(tmp_path):
    from PIL import Image

    task = two_parts()
    model = build_model(tiny_recipe(label_map="first"), task)
    model.program.weight.assign(np.random.default_rng(1).normal(size=(48, 48, 3)))
    saved = SavedProgram.load(saved_program(model, tiny_recipe(), task, {}).save(tmp_path / "p"))
    Image.new("RGB", (7, 9), (250, 10, 90)).save(tmp_path / "photo.png")
    probabilities, names = predict_named(saved, "image", [str(tmp_path / "photo.png")])
    assert names == ["small/0", "small/1", "big/0", "big/1", "big/2"]
    small = read_images([str(tmp_path / "photo.png")], (4, 4), 1)
    big = read_images([str(tmp_path / "photo.png")], (6, 5), 3)
    small_logits, big_logits = model.logits(small, part=0), model.logits(big, part=1)
    # "first" over all five classes: class k reads ImageNet class k alone, so scores are logits
    scores = np.concatenate([small_logits[:, 0:2], big_logits[:, 2:5]], axis=-1)
    expected = keras.ops.softmax(scores)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    with pytest.raises(ValueError, match="no part of the program of task 'small\\+big' reads text"):
        predict_named(saved, "text", ["words"])


def test_a_hundred_parts_train_save_reload_export_and_answer(tmp_path):
    parts = tuple(numbered_task(f"p{i}", (4, 4, 1), 2, 4) for i in range(100))
    task = MultiPartTask("hundred", parts)
    model = build_model(tiny_recipe(), task)
    result = fit(model, task, steps=2, batch_size=16)
    assert result.steps == 2 and np.isfinite(result.train_accuracy)
    path = saved_program(model, tiny_recipe(), task, {}).save(tmp_path / "p")
    saved = SavedProgram.load(path)
    inputs, _ = next(iter(task.sample("test", 1, 100)))
    np.testing.assert_allclose(saved.build_model()(list(inputs)), model(list(inputs)), atol=1e-6)
    served = tf.saved_model.load(str(export_programs([path], tmp_path / "export"))).signatures
    assert len(served) == 2 * 100 + 2  # each part's pixels and bytes, and the task unknown's
    images = np.random.default_rng(5).integers(0, 256, (3, 4, 4, 1)).astype("uint8")
    answer = served["hundred_p57"](images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(answer, model.part_model(57)(images), atol=1e-5)
    unknown = served["hundred_any"](images=tf.constant(images))
    expected = task_unknown(model, list(range(100)), [images] * 100)
    np.testing.assert_allclose(unknown["probabilities"].numpy(), expected, atol=1e-5)
    best = np.asarray(expected).argmax(axis=-1)
    names = [f"p{c // 2}/{c % 2}".encode() for c in best]
    assert list(unknown["class_names"].numpy()) == names


def test_task_unknown_accuracy_never_beats_the_part_known_and_frames_are_shared():
    parts = tuple(numbered_task(f"p{i}", (4, 4, 1), 2, 12) for i in range(3))
    task = MultiPartTask("three", parts + (numbered_task("other", (5, 5, 3), 3, 9),))
    model = build_model(tiny_recipe(), task)
    model.program.weight.assign(np.random.default_rng(2).normal(size=(48, 48, 3)))
    known = evaluate_parts(model, task)
    unknown = evaluate_task_unknown(model, task)
    assert set(unknown) == set(known)
    # right among every part's classes is right among the part's own
    assert all(unknown[name] <= known[name] + 1e-6 for name in known)
    # the three parts of one shape answer among their six classes; "other" reads alone
    assert unknown["other"] == pytest.approx(known["other"])
    keys = [frame_key(model.encoders[i], model.program.masks[i]) for i in range(4)]
    assert keys[0] == keys[1] == keys[2] != keys[3]
    inputs = tf.constant(np.arange(2 * 16, dtype="uint8").reshape(2, 4, 4, 1))
    scores = np.concatenate([model.label_maps[i].scores(model.logits(inputs, part=i))
                             for i in range(3)], axis=-1)
    np.testing.assert_allclose(task_unknown(model, [0, 1, 2], [inputs] * 3),
                               keras.ops.softmax(scores), atol=1e-5)


def test_a_run_of_parts_reports_its_worst_part_and_the_task_unknown(tmp_path, monkeypatch):
    import arnn_tf.runs as runs

    parts = tuple(numbered_task(f"p{i}", (4, 4, 1), 2, 12) for i in range(3))
    task = MultiPartTask("three", parts, sampling="proportional")
    monkeypatch.setattr(runs, "recipe_task", lambda recipe, data_dir: task)
    metrics = runs.train(tiny_recipe(steps=2, batch_size=8, frame_size=32), tmp_path / "run",
                         verbose=False)
    per_task = metrics["test_accuracy_per_task"]
    assert metrics["test_accuracy_worst_part"] == min(per_task.values())
    assert metrics["test_accuracy"] == pytest.approx(np.mean(list(per_task.values())))
    assert 0 <= metrics["test_accuracy_task_unknown"] <= metrics["test_accuracy"] + 1e-6


def as_format_5(path):
    """Rewrites a program of several parts as format 5 wrote it: its parts as "members"."""
    document = json.loads((path / "program.json").read_text())
    document.update(format_version=5, members=document.pop("parts"))
    document["label_map"]["groups"] = []
    document["task"]["parts"] = document["task"].pop("joined")
    (path / "program.json").write_text(json.dumps(document))
    return path


def test_a_program_of_parts_warm_starts_part_by_part_and_reads_format_5(tmp_path):
    task = two_parts()
    model = build_model(tiny_recipe(label_map="linear"), task)
    fit(model, task, steps=2, batch_size=8)
    path = saved_program(model, tiny_recipe(label_map="linear"), task, {}).save(tmp_path / "p")
    fresh = build_model(tiny_recipe(label_map="linear"), task)
    SavedProgram.load(path).warm_start(fresh)
    inputs, _ = next(iter(task.sample("test", 4, 4)))
    np.testing.assert_allclose(fresh(list(inputs)), model(list(inputs)), atol=1e-6)
    one_part = build_model(tiny_recipe(label_map="linear"), task.part_tasks[0])
    with pytest.raises(ValueError, match="has 2 parts, this model 1"):
        SavedProgram.load(path).warm_start(one_part)
    older = SavedProgram.load(as_format_5(path))
    assert [p.name for p in older.parts] == ["small", "big"]
    np.testing.assert_allclose(older.build_model()(list(inputs)), model(list(inputs)), atol=1e-6)


def test_parts_on_their_own_regions_answer_as_each_part_alone_and_learn_only_there():
    task = two_parts()
    model = build_model(tiny_recipe(part_regions=True), task)
    shape = model.program.weight.shape
    model.program.weight.assign(np.random.default_rng(2).normal(size=shape).astype("float32"))
    inputs, labels = next(iter(task.dataset("train", 16, shuffle=True, seed=1)))
    with tf.GradientTape() as tape:
        answer = model(list(inputs))
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, answer))
    rows = np.split(answer.numpy(), [len(inputs[0])])
    np.testing.assert_allclose(rows[0][:, :2], model.part_model(0)(inputs[0]), atol=1e-5)
    np.testing.assert_allclose(rows[1][:, 2:], model.part_model(1)(inputs[1]), atol=1e-5)
    gradient = tape.gradient(loss, model.program.weight).numpy()
    outside = 1 - np.clip(sum(model.program.masks), 0, 1)
    assert np.abs(gradient).sum() > 0 and np.abs(gradient * outside).sum() == 0
