"""Older programs of several image data sets joined as one image task: combined shapes,
disjoint classes, mixed batches, and the data sets of a task of parts read that way."""

import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.programs.combined import combine_tasks
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.parts import MultiPartTask
from arnn_tf.training.evaluation import evaluate_parts
from fitting import fit


def constant_task(name, shape, num_classes, value, n=30):
    images = np.full((n, *shape), value, dtype="uint8")
    labels = (np.arange(n) % num_classes).astype("int32")
    return ImageTask(name, shape, tuple(str(i) for i in range(num_classes)),
                lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))


def tasks():
    return constant_task("gray", (12, 12, 1), 3, 100), constant_task("rgb", (10, 8, 3), 2, 200)


def test_combined_task_has_one_shape_and_disjoint_classes():
    combined = combine_tasks(tasks())
    assert combined.image_shape == (12, 12, 3) and combined.name == "gray+rgb"
    assert combined.class_names == ("gray/0", "gray/1", "gray/2", "rgb/0", "rgb/1")
    assert [(p.name, p.first_class, p.num_classes) for p in combined.parts] == [("gray", 0, 3), ("rgb", 3, 2)]
    images, labels = next(iter(combined.dataset("test", 60)))
    images, labels = images.numpy(), labels.numpy()
    gray, rgb = labels < 3, labels >= 3
    assert gray.sum() == 30 and rgb.sum() == 30 and set(labels[rgb]) == {3, 4}
    assert (images[gray] == 100).all()  # grayscale repeated to three channels, no padding needed
    rgb_images = images[rgb]
    assert (rgb_images[:, 1:11, 2:10] == 200).all() and (rgb_images[:, 0] == 0).all()  # centred padding


def test_training_batches_mix_the_tasks():
    combined = combine_tasks(tasks(), seed=1)
    _, labels = next(iter(combined.dataset("train", 20, shuffle=True)))
    labels = labels.numpy()
    assert (labels < 3).any() and (labels >= 3).any()


def test_per_task_evaluation_uses_each_tasks_own_classes():
    combined = combine_tasks(tasks())
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=0), combined.image_shape,
                                     combined.num_classes, label_map="random", seed=3)
    fit(model, combined, steps=4, batch_size=10)
    accuracy = evaluate_parts(model, combined)
    assert set(accuracy) == {"gray", "rgb"}
    # constant images: each part's prediction is one class, right for 1/3 and 1/2 of its images
    assert accuracy["gray"] == 10 / 30 and accuracy["rgb"] == 0.5


def test_an_older_joined_program_reads_a_task_of_parts_as_one_image_task(tmp_path):
    combined = combine_tasks(tasks())
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=0), combined.image_shape,
                                     combined.num_classes, label_map="first")
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=0,
                                      task_name="gray+rgb", class_names=list(combined.class_names),
                                      joined=combined.parts)
    loaded = SavedProgram.load(program.save(tmp_path / "joined"))
    task = loaded.matching_task(MultiPartTask("gray+rgb", tasks()))
    assert task.image_shape == (12, 12, 3) and task.parts == combined.parts
    accuracy = evaluate_parts(loaded.build_model(), task)
    assert set(accuracy) == {"gray", "rgb"}
