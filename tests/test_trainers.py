"""The Trainer interface: a second trainer written against it gets checkpoints and resume."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.recipes import RECIPES
from arnn_tf.training.trainer import Trainer


class BatchLoopTrainer(Trainer):
    """A trainer with its own loop (`train_on_batch`), as a query-only trainer would have."""

    def compile(self, model, plan):
        model.compile(optimizer=keras.optimizers.Adam(plan.schedule()))

    def run(self, model, data, steps, steps_per_epoch, callbacks, plan):
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
    return ImageTask("toy", (12, 12, 1), ("a", "b"),
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
    assert first.total_seconds == first.seconds
    assert again.total_seconds > again.seconds  # the first process's time, from its checkpoint


class HookRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.hooks = []

    def on_epoch_end(self, epoch, logs=None):
        self.hooks.append(("epoch_end", epoch, dict(logs)))

    def on_train_batch_end(self, batch, logs=None):
        self.hooks.append(("batch_end", batch))
        if batch == 1 and len([h for h in self.hooks if h[0] == "epoch_end"]) == 1:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.hooks.append(("train_end", dict(logs or {})))


def _loop_model():
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None), (8, 8, 3), 2)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.optimizer.build(model.trainable_variables)
    return model


def test_the_shared_callback_loop_calls_hooks_as_fit_does_and_stops_when_asked():
    from arnn_tf.training.callback_loop import run_callback_loop

    model, recorder, counter = _loop_model(), HookRecorder(), iter(range(100))
    history = run_callback_loop(
        model, 7, 3, [recorder], lambda: {"loss": float(next(counter))}
    )
    assert history == {"loss": [2.0, 4.0]}  # epoch 0: steps 0-2; epoch 1 stopped after 2 steps
    assert [h[1] for h in recorder.hooks if h[0] == "batch_end"] == [0, 1, 2, 0, 1]
    assert recorder.hooks[-1] == ("train_end", {"loss": 4.0})


def test_a_failing_step_still_ends_training_for_the_callbacks():
    from arnn_tf.training.callback_loop import run_callback_loop

    model, recorder, calls = _loop_model(), HookRecorder(), []

    def step():
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("server went away")
        return {"loss": 1.0}

    with pytest.raises(ConnectionError, match="went away"):
        run_callback_loop(model, 5, 5, [recorder], step)
    assert recorder.hooks[-1] == ("train_end", {"loss": 1.0})
