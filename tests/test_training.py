"""Training features: resume after SIGKILL, NaN stop, mixed precision, TensorBoard events."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.progress import StepProgress
from arnn_tf.training.checkpoints import CHECKPOINT_FILE
from arnn_tf.training.distribute import set_precision
from arnn_tf.training.results import TrainingDivergedError
from arnn_tf.training.schedules import learning_rate_schedule
from arnn_tf.training.summaries import ProgramSummaries
from fitting import fit


def toy_task(n=64):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 12, 12, 1)).astype("uint8")
    labels = rng.integers(0, 4, n).astype("int32")
    return ImageTask("toy", (12, 12, 1), ("a", "b", "c", "d"), lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))


def toy_model(**options):
    return build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=1), (12, 12, 1), 4, **options)


def train_command(out, steps):
    return [sys.executable, "-m", "arnn_tf.cli.main", "train", "--backbone", "tiny_cnn", "--weights", "none",
            "--steps", str(steps), "--checkpoint-every", "20", "--batch-size", "8", "--out", str(out)]


def test_rerun_after_sigkill_resumes_and_ends_at_the_requested_step(tmp_path):
    steps = 400
    killed = tmp_path / "killed"
    process = subprocess.Popen(train_command(killed, steps), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoint" / CHECKPOINT_FILE
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (killed / "metrics.json").exists(), "the run was not killed mid-training"

    rerun = subprocess.run(train_command(killed, steps), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed_line = next(line for line in rerun.stdout.splitlines() if line.startswith("resumed from step"))
    resumed_from = int(resumed_line.split()[3])
    metrics = json.loads((killed / "metrics.json").read_text())
    assert 0 < resumed_from < steps and metrics["resumed_from"] == resumed_from and metrics["steps"] == steps
    assert "\x1b" not in rerun.stdout and "\r" not in rerun.stdout  # plain lines, not a redrawn bar
    shown = [int(line.split()[1].split("/")[0]) for line in rerun.stdout.splitlines()
             if line.startswith("step ")]
    assert shown[0] > resumed_from and shown[-1] == steps and shown == sorted(shown)

    uninterrupted = tmp_path / "uninterrupted"
    subprocess.run(train_command(uninterrupted, steps), check=True, capture_output=True, timeout=300)
    np.testing.assert_allclose(np.load(killed / "program" / "W.npy"), np.load(uninterrupted / "program" / "W.npy"),
                               atol=1e-4)


def test_train_command_leaves_no_half_filled_cache_behind(tmp_path):
    # Under a OneDeviceStrategy Keras peeks at a training batch before `fit` and stops evaluation
    # at the last batch; and a run shorter than an epoch stops reading its training data midway.
    # A shuffle buffer of 8 makes the peek read part of the training split, as on a large data set.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}  # tf.data's warning is a C++ log line
    script = ("import sys, arnn_tf.tasks.base as base; base.MAX_SHUFFLE_BUFFER = 8; "
              "from arnn_tf.cli.main import main; sys.exit(main(sys.argv[1:]))")
    command = [sys.executable, "-c", script, *train_command(tmp_path / "short", 5)[3:]]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "short" / "metrics.json").read_text())["steps"] == 5
    assert "did not fully read the dataset being cached" not in run.stderr


def test_the_same_seed_trains_the_same_program_and_another_seed_does_not():
    def train(seed):
        model = toy_model()
        fit(model, toy_task(), steps=12, batch_size=8, seed=seed)
        return keras.ops.convert_to_numpy(model.program.weight.value)

    first, again, other = train(3), train(3), train(4)
    assert np.abs(first).max() > 0
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)  # the seed sets the data order


def test_learning_rate_schedules():
    paper = learning_rate_schedule("paper", 0.05, steps_per_epoch=10, total_steps=100)
    assert [float(paper(step)) for step in (0, 19, 20, 40)] == pytest.approx([0.05, 0.05, 0.048, 0.04608])
    cosine = learning_rate_schedule("cosine", 0.05, steps_per_epoch=10, total_steps=100)
    assert [float(cosine(step)) for step in (0, 50, 100)] == pytest.approx([0.05, 0.025, 0.0], abs=1e-7)
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate_schedule("linear", 0.05, 10, 100)


def test_cosine_warmup_rises_to_the_peak_then_decays_to_zero_at_the_last_step():
    warm = learning_rate_schedule("cosine", 0.05, steps_per_epoch=10, total_steps=100, warmup_steps=20)
    assert [float(warm(step)) for step in (0, 10, 20, 60, 100)] == pytest.approx(
        [0.0, 0.025, 0.05, 0.025, 0.0], abs=1e-7)
    for kind, warmup in (("paper", 20), ("cosine", 100), ("cosine", -1)):
        with pytest.raises(ValueError, match="warmup needs the cosine schedule"):
            learning_rate_schedule(kind, 0.05, 10, 100, warmup_steps=warmup)


def test_cosine_schedule_reaches_zero_at_the_last_step():
    model = toy_model()
    fit(model, toy_task(), steps=12, batch_size=8, lr_schedule="cosine")
    assert int(model.optimizer.iterations.numpy()) == 12
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.0, abs=1e-7)


class RecordProgram(keras.callbacks.Callback):
    """Keeps W after every step."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(keras.ops.convert_to_numpy(self.model.program.weight.value))


@pytest.mark.parametrize("loop", ["fit", "strategy_run"])
def test_ema_keeps_the_moving_average_of_the_program(loop, monkeypatch):
    monkeypatch.setattr("arnn_tf.training.white_box.needs_custom_loop", lambda strategy: loop == "strategy_run")
    model, recorder = toy_model(), RecordProgram()
    fit(model, toy_task(), steps=6, batch_size=8, ema=0.5, callbacks=[recorder])
    expected = recorder.weights[0]
    for weight in recorder.weights[1:]:
        expected = 0.5 * expected + 0.5 * weight
    final = keras.ops.convert_to_numpy(model.program.weight.value)
    assert np.abs(final - recorder.weights[-1]).max() > 1e-3  # the average, not the last step's W
    np.testing.assert_allclose(final, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        fit(toy_model(), toy_task(), steps=1, batch_size=8, ema=1.0)


def test_non_finite_loss_stops_training_and_keeps_no_bad_checkpoint(tmp_path):
    model = toy_model(l2=1e-6)
    model.program.weight.assign(np.full(model.program.weight.shape, 1e20, "float32"))  # ||W||^2 overflows: inf loss
    with pytest.raises(TrainingDivergedError, match="by step 1"):
        fit(model, toy_task(), steps=50, batch_size=8, checkpoint_dir=tmp_path)
    assert not (tmp_path / CHECKPOINT_FILE).exists()


@pytest.fixture()
def restore_float32():
    yield
    set_precision("float32")


def test_mixed_bfloat16_keeps_the_program_and_loss_in_float32(restore_float32):
    set_precision("mixed_bfloat16")
    model = toy_model()
    assert model.program.weight.dtype == "float32"
    assert model.program.compute_dtype == "bfloat16"
    assert model.backbone.layers[-1].compute_dtype == "bfloat16"
    images = np.zeros((2, 12, 12, 1), "uint8")
    assert keras.ops.convert_to_numpy(model.adversarial_inputs(images)).dtype.name == "bfloat16"
    assert model(images).dtype == "float32"
    result = fit(model, toy_task(), steps=3, batch_size=8)
    assert result.steps == 3 and np.isfinite(result.history["loss"][-1])


def test_mixed_float16_uses_loss_scaling(restore_float32):
    set_precision("mixed_float16")
    model = toy_model()
    fit(model, toy_task(), steps=2, batch_size=8)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.program.weight.dtype == "float32"


def read_events(logdir):
    scalars, images, plugins = {}, set(), set()
    for path in tf.io.gfile.glob(os.path.join(str(logdir), "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "hparams":
                    plugins.add(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                                .WhichOneof("data"))
                elif plugin == "images":
                    images.add(value.tag)
                else:
                    scalars.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return scalars, images, plugins


def test_tensorboard_holds_scalars_images_and_hparams(tmp_path):
    model = toy_model(l2=1e-3)
    task = toy_task()
    samples = next(iter(task.dataset("train", 3)))[0].numpy()
    summaries = ProgramSummaries(tmp_path, samples, hparams={"learning_rate": 0.05, "label_map": "first"}, every_steps=2)
    fit(model, task, steps=16, batch_size=8, callbacks=[summaries])
    summaries.write_test_metrics({"accuracy": 0.25}, step=16)
    scalars, images, plugins = read_events(tmp_path)
    for tag in ("batch_loss", "batch_accuracy", "learning_rate", "program_norm", "epoch_loss", "epoch_accuracy"):
        assert tag in scalars, tag
    assert len(scalars["program_norm"]) == 8 and scalars["program_norm"][-1] > 0
    assert scalars["learning_rate"][0] == pytest.approx(0.05)
    assert scalars["test_accuracy"] == [0.25]
    assert images == {"program", "x_adv"}
    assert plugins == {"experiment", "session_start_info"}


def test_progress_in_a_log_is_a_plain_line_every_n_steps_counted_from_the_resumed_step(capsys):
    progress = StepProgress(total_steps=30, first_step=20, every=4, terminal=False)
    progress.on_train_begin()
    for batch in range(10):
        progress.on_train_batch_end(batch, {"loss": 0.5, "accuracy": 0.75})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["step 24/30", "step 28/30", "step 30/30"]
    assert lines[0].startswith("step 24/30 - loss 0.5000 - accuracy 0.7500 - ")


def test_fit_refuses_numbers_no_run_can_use():
    with pytest.raises(ValueError, match="'batch_size' must be a positive integer, got 0"):
        fit(toy_model(), toy_task(), steps=1, batch_size=0)
    with pytest.raises(ValueError, match="'learning_rate' must be a number > 0, got -1"):
        fit(toy_model(), toy_task(), steps=1, learning_rate=-1.0)
