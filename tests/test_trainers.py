"""The Trainer interface: a second trainer written against it gets checkpoints and resume."""

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.model import build_reprogrammed_model
from arnn_tf.recipes import RECIPES
from arnn_tf.tasks import Task
from arnn_tf.trainers import Trainer


class BatchLoopTrainer(Trainer):
    """A trainer with its own loop (`train_on_batch`), as a query-only trainer would have."""

    def compile(self, model, schedule, recipe):
        model.compile(optimizer=keras.optimizers.Adam(schedule))

    def run(self, model, data, steps, steps_per_epoch, callbacks, recipe):
        callbacks = keras.callbacks.CallbackList(list(callbacks), model=model)
        model.stop_training = False
        callbacks.on_train_begin()
        for batch, (images, labels) in enumerate(data.take(steps)):
            callbacks.on_train_batch_begin(batch)
            logs = model.train_on_batch(images, labels, return_dict=True)
            callbacks.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        callbacks.on_train_end(logs)
        return {key: [float(value)] for key, value in logs.items()}


def toy_task(n=40):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 12, 12, 1)).astype("uint8")
    labels = (images.mean(axis=(1, 2, 3)) > 127).astype("int32")
    return Task("toy", (12, 12, 1), ("a", "b"),
                lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))


def test_another_trainer_gets_steps_checkpoints_and_resume(tmp_path, capsys):
    def model():
        return build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=1), (12, 12, 1), 2)

    recipe = RECIPES["paper"].replace(steps=4, batch_size=8)
    first = BatchLoopTrainer().fit(model(), toy_task(), recipe, checkpoint_dir=tmp_path,
                                   checkpoint_every=2, verbose=False)
    assert (first.steps, first.resumed_from) == (4, 0)
    resumed = model()
    again = BatchLoopTrainer().fit(resumed, toy_task(), recipe.replace(steps=6),
                                   checkpoint_dir=tmp_path, verbose=True)
    assert (again.steps, again.resumed_from) == (6, 4)
    assert "resumed from step 4" in capsys.readouterr().out
    assert int(resumed.optimizer.iterations.numpy()) == 6
