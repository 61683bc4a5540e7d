"""Black-box training: query functions, the zeroth-order estimator and `BlackBoxTrainer`."""

import http.server
import json
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.black_box import (
    BlackBoxTrainer,
    LocalQuery,
    QueryError,
    RestQuery,
    StandIn,
    ZerothOrderEstimator,
    log_probabilities,
    program_frames,
)
from arnn_tf.label_maps.frequency import frequency_map
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.recipes import RECIPES
from arnn_tf.training.checkpoints import restore_checkpoint
from arnn_tf.training.plan import TrainingPlan

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (40, 12, 12, 1)).astype("uint8")
LABELS = (IMAGES.mean(axis=(1, 2, 3)) > 127).astype("int32")
RECIPE = RECIPES["paper"].replace(steps=4, batch_size=8)


def toy_task():
    return ImageTask("toy", (12, 12, 1), ("a", "b"),
                lambda split: tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)))


def toy_model(backbone=None, label_map="first"):
    backbone = backbone or build_backbone("tiny_cnn", None, seed=1)
    return build_reprogrammed_model(backbone, (12, 12, 1), 2, label_map=label_map, l2=1e-4)


def cosine(a, b):
    return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))


def estimate(estimator, loss, weight, mask, seed=1):
    directions = estimator.sample(mask, np.random.default_rng(seed))
    losses = [loss(point) for point in estimator.points(weight, directions)]
    return estimator.gradient(losses, directions, mask)


@pytest.mark.parametrize("antithetic", [False, True])
def test_the_estimate_points_along_the_gradient_of_a_smooth_function(antithetic):
    a = np.random.default_rng(2).normal(size=(8, 8, 3))
    def loss(w):
        return float(np.sum(a * w) + np.sum(np.sin(w)) + 0.5 * np.sum(w ** 2))
    weight = np.random.default_rng(3).normal(size=(8, 8, 3)).astype("float32")
    gradient = a + np.cos(weight) + weight
    mask = np.ones((8, 8, 3), "float32")
    estimator = ZerothOrderEstimator(192, 0.01, antithetic, zo_resolution=None)
    assert cosine(estimate(estimator, loss, weight, mask), gradient) > 0.5
    assert cosine(estimate(ZerothOrderEstimator(2, 0.01, antithetic, None), loss, weight,
                           mask), gradient) < 0.5  # few directions, a rough estimate


def test_a_clipped_estimate_keeps_its_direction_and_is_no_longer_than_the_clip():
    weight = np.random.default_rng(3).normal(size=(8, 8, 3)).astype("float32")
    mask = np.ones((8, 8, 3), "float32")
    def loss(w):
        return float(np.sum(w ** 2))
    free = estimate(ZerothOrderEstimator(directions=4, zo_resolution=None), loss, weight, mask)
    clipped = estimate(ZerothOrderEstimator(directions=4, zo_resolution=None, clip=1.0), loss,
                       weight, mask)
    assert np.linalg.norm(free) > 1 and np.linalg.norm(clipped) == pytest.approx(1.0, rel=1e-5)
    assert cosine(free, clipped) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="clip must be a number > 0"):
        ZerothOrderEstimator(clip=0.0)


def test_coarse_directions_estimate_a_smooth_gradient_with_few_queries():
    smooth = keras.ops.convert_to_numpy(keras.ops.image.resize(
        np.random.default_rng(4).normal(size=(1, 4, 4, 3)).astype("float32"), (48, 48)))[0]
    def loss(w):
        return float(np.sum(smooth * w))
    mask = np.ones((48, 48, 3), "float32")
    weight = np.zeros((48, 48, 3), "float32")
    coarse = estimate(ZerothOrderEstimator(48, 0.01, zo_resolution=4), loss, weight, mask)
    full = estimate(ZerothOrderEstimator(48, 0.01, zo_resolution=None), loss, weight, mask)
    assert cosine(coarse, smooth) > 0.6 > 0.2 > cosine(full, smooth)


def test_directions_for_each_image_estimate_the_batch_gradient_better_at_the_same_points():
    rng = np.random.default_rng(5)
    shared_part, own = rng.normal(size=(8, 8, 3)), 0.3 * rng.normal(size=(16, 8, 8, 3))
    def losses(points):  # image b's loss at each point: one W for all, or one W for each
        w = points if points.ndim == 5 else np.broadcast_to(points[:, None], (len(points), 16,
                                                                                *points.shape[1:]))
        return np.sum((shared_part + own) * w, axis=(2, 3, 4)) + 0.5 * np.sum(w**2, (2, 3, 4))
    weight = rng.normal(size=(8, 8, 3)).astype("float32")
    gradient = shared_part + own.mean(axis=0) + weight
    mask = np.ones((8, 8, 3), "float32")
    cosines = []
    for per_image in (False, True):
        estimator = ZerothOrderEstimator(4, 0.01, zo_resolution=None, per_image=per_image)
        directions = estimator.sample(mask, np.random.default_rng(1), images=16)
        points = estimator.points(weight, directions)
        assert points.shape == ((5, 16, 8, 8, 3) if per_image else (5, 8, 8, 3))
        cosines.append(cosine(estimator.gradient(losses(points), directions, mask), gradient))
    assert cosines[1] > 0.4 > 0.25 > cosines[0]  # 64 slopes against 4, for the same 80 frames
    with pytest.raises(ValueError, match=r"at 5 points .*, for each image, got shape \(5, 3\)"):
        estimator.gradient(np.zeros((5, 3)), directions, mask)


def test_frames_under_a_weight_for_each_image_are_each_images_own():
    model = toy_model()
    images = model.encoders[0](IMAGES[:3])  # the canvases the program takes
    weights = np.random.default_rng(0).normal(size=(2, 3, 48, 48, 3)).astype("float32")
    frames = program_frames(model.program, images, weights).reshape(2, 3, 48, 48, 3)
    for b in range(3):
        alone = program_frames(model.program, images[b : b + 1], weights[:, b])
        np.testing.assert_allclose(frames[:, b], alone, atol=1e-6)
    assert not np.abs(keras.ops.convert_to_numpy(model.program.weight)).any()


def test_directions_are_unit_vectors_off_the_mask():
    mask = np.ones((48, 48, 3), "float32")
    mask[18:30, 18:30] = 0
    estimator = ZerothOrderEstimator(5, 0.1, antithetic=True)
    directions = estimator.sample(mask, np.random.default_rng(0))
    assert directions.shape == (5, 48, 48, 3) and not directions[:, 18:30, 18:30].any()
    np.testing.assert_allclose(np.linalg.norm(directions.reshape(5, -1), axis=1), 1, rtol=1e-5)
    points = estimator.points(np.zeros((48, 48, 3), "float32"), directions)
    assert len(points) == estimator.points_per_step == 11
    np.testing.assert_allclose(points[6:], -points[1:6])
    with pytest.raises(ValueError, match="finer than the 48x48 program"):
        ZerothOrderEstimator(zo_resolution=64).sample(mask, np.random.default_rng(0))


def test_only_the_query_function_touches_the_backbone():
    model = toy_model()
    def refuse(*args, **kwargs):
        raise AssertionError("the model's own backbone was called")
    model.backbone.call = refuse
    query = LocalQuery(build_backbone("tiny_cnn", None, seed=1), chunk=32)
    trainer = BlackBoxTrainer(query, directions=4, beta=0.05)
    result = trainer.fit(model, toy_task(), RECIPE.replace(steps=3), verbose=False)
    assert query.queries == trainer.queries == 8 * (4 + 1) * 3 == result.history["queries"][-1]
    assert np.abs(keras.ops.convert_to_numpy(model.program.weight.value)).max() > 0


def test_a_held_program_costs_one_frame_per_image_and_keeps_w():
    model = toy_model(label_map="linear")
    query = LocalQuery(model.backbone)
    recipe = RECIPE.replace(steps=2, label_map="linear", freeze_program=True)
    BlackBoxTrainer(query).fit(model, toy_task(), recipe, verbose=False)
    assert query.queries == 8 * 2
    assert not keras.ops.convert_to_numpy(model.program.weight.value).any()


def test_the_maps_warmup_holds_w_and_asks_one_frame_an_image_then_w_learns():
    model = toy_model(label_map="linear")
    query = LocalQuery(model.backbone)
    recipe = RECIPE.replace(steps=2, label_map="linear", map_warmup_steps=2)
    trainer = BlackBoxTrainer(query, directions=3)
    trainer.fit(model, toy_task(), recipe, verbose=False)
    assert query.queries == 8 * 2
    assert not keras.ops.convert_to_numpy(model.program.weight.value).any()
    model, query = toy_model(label_map="linear"), LocalQuery(model.backbone)
    BlackBoxTrainer(query, directions=3).fit(model, toy_task(), recipe.replace(steps=3),
                                             verbose=False)
    assert query.queries == 8 * 2 + 8 * (3 + 1)
    assert keras.ops.convert_to_numpy(model.program.weight.value).any()


def refit_run(refit_epochs, steps=4, checkpoint_dir=None):
    model = toy_model(label_map="linear")
    recipe = RECIPE.replace(steps=steps, label_map="linear", map_warmup_steps=2,
                            trainer="black_box", map_refit_epochs=refit_epochs)
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), directions=3,
                              map_refit_epochs=refit_epochs)
    trainer.fit(model, toy_task(), recipe, checkpoint_dir=checkpoint_dir, verbose=False)
    return model, trainer


def map_loss_at_zero(model):
    logits = keras.ops.convert_to_numpy(model.logits(IMAGES[:16]))
    return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        LABELS[:16], model.label_map(logits))))


def test_the_warmups_answers_refit_the_map_before_w_learns_at_no_query():
    from arnn_tf.black_box.answer_replay import AnswerReplay
    model = toy_model(label_map="linear")
    replay = AnswerReplay()
    logits = keras.ops.convert_to_numpy(model.logits(IMAGES[:16]))
    for rows in (slice(0, 8), slice(8, 16)):  # the two warmup batches of a run
        replay.add(logits[rows], LABELS[rows], [8])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    before = map_loss_at_zero(model)
    program = keras.ops.convert_to_numpy(model.program.weight.value).copy()
    replay.refit(model, epochs=30, learning_rate=0.5)
    assert map_loss_at_zero(model) < before - 0.05 and len(replay) == 0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.program.weight.value),
                                  program)
    plain, plain_trainer = refit_run(0)
    refitted, trainer = refit_run(20)
    assert trainer.queries == plain_trainer.queries == 8 * 2 + 8 * (3 + 1) * 2
    assert len(trainer.replay) == 0
    kernel = refitted.label_map.trainable_weights[0].numpy()
    assert not np.allclose(kernel, plain.label_map.trainable_weights[0].numpy())


def test_the_kept_answers_go_through_a_checkpoint_so_a_resumed_warmup_refits_on_all(tmp_path):
    straight, _ = refit_run(5)
    _, first = refit_run(5, steps=1, checkpoint_dir=tmp_path)
    assert len(first.replay) == 1
    assert first.checkpoint_arrays()["replay_logits"].shape == (8, 1000)
    resumed, trainer = refit_run(5, checkpoint_dir=tmp_path)
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    assert trainer.queries == 8 * 1 + 8 * (3 + 1) * 2


def task_loss(model, query):
    logits = query(keras.ops.convert_to_numpy(model.adversarial_inputs(IMAGES)))
    return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        LABELS, model.label_map(logits))))


@pytest.mark.parametrize("per_image", [False, True])
def test_training_through_queries_lowers_the_loss(per_image):
    model = toy_model()  # a fixed map: only W learns, from the estimates alone
    query = LocalQuery(model.backbone)
    before = task_loss(model, query)
    trainer = BlackBoxTrainer(query, directions=10, per_image_directions=per_image)
    trainer.fit(model, toy_task(), RECIPE.replace(steps=20), verbose=False)
    assert task_loss(model, query) < before - 0.01
    assert trainer.queries == 20 * 8 * 11  # directions for each image cost no more frames


def test_nesterov_steps_on_clipped_estimates_lower_the_loss():
    model = toy_model()
    query = LocalQuery(model.backbone)
    before = task_loss(model, query)
    recipe = RECIPE.replace(steps=20, program_update="nesterov", program_lr_scale=1.0,
                            learning_rate=1.0)  # SGD: the step is the rate times the estimate
    BlackBoxTrainer(query, directions=10, zo_clip=0.3).fit(model, toy_task(), recipe,
                                                          verbose=False)
    assert task_loss(model, query) < before - 0.01


def test_a_program_written_as_a_code_learns_through_directions_in_the_code():
    estimator = ZerothOrderEstimator(directions=3, zo_resolution=16)
    directions = estimator.sample(np.ones(20, "float32"), np.random.default_rng(0))
    assert directions.shape == (3, 20) and estimator.dimension(np.ones(20)) == 20
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, rtol=1e-5)
    backbone = build_backbone("tiny_cnn", None, seed=1)
    model = build_reprogrammed_model(backbone, (12, 12, 1), 2, label_map="first",
                                     code={"code_dimension": 40, "code_seed": 1})
    query = LocalQuery(model.backbone)
    before = task_loss(model, query)
    BlackBoxTrainer(query, directions=10).fit(model, toy_task(), RECIPE.replace(steps=20),
                                              verbose=False)
    assert task_loss(model, query) < before - 0.01
    assert tuple(model.program.weight.shape) == (40,)


def test_checkpoints_and_resume_replay_the_uninterrupted_run(tmp_path):
    straight = toy_model(label_map="linear")
    recipe = RECIPE.replace(label_map="linear")
    BlackBoxTrainer(LocalQuery(straight.backbone), directions=3).fit(
        straight, toy_task(), recipe, verbose=False)
    first = toy_model(label_map="linear")
    BlackBoxTrainer(LocalQuery(first.backbone), directions=3).fit(
        first, toy_task(), recipe.replace(steps=2), checkpoint_dir=tmp_path, verbose=False)
    resumed = toy_model(label_map="linear")
    trainer = BlackBoxTrainer(LocalQuery(resumed.backbone), directions=3)
    result = trainer.fit(resumed, toy_task(), recipe, checkpoint_dir=tmp_path, verbose=False)
    assert (result.steps, result.resumed_from) == (4, 2)
    assert trainer.queries == 2 * 8 * 4  # this process's queries: the two steps it trained
    assert int(resumed.optimizer.iterations.numpy()) == 4
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


class BadAfter:
    """Answers like ``query`` for ``good`` calls, then with ``bad(answer)``."""

    def __init__(self, query, good, bad):
        self.query, self.good, self.bad = query, good, bad

    def __call__(self, frames):
        answer = self.query(frames)
        self.good -= 1
        return answer if self.good >= 0 else self.bad(answer)


def with_nan(answer):
    answer = answer.copy()
    answer[3, 7] = np.nan
    return answer


@pytest.mark.parametrize("bad, message", [
    (lambda answer: answer[:, :999], r"answered shape \(40, 999\) for 40 frames"),
    (with_nan, r"NaN or infinite values \(1 of 40000\) in 1 of 40 frames \(first: frame 3\)"),
], ids=["shape", "nan"])
def test_a_bad_answer_is_refused_and_nothing_is_lost(tmp_path, bad, message):
    model = toy_model()
    query = BadAfter(LocalQuery(model.backbone), 2, bad)
    trainer = BlackBoxTrainer(query, directions=4)
    with pytest.raises(QueryError, match=message):
        trainer.fit(model, toy_task(), RECIPE, checkpoint_dir=tmp_path, checkpoint_every=10,
                    verbose=False)
    weight = keras.ops.convert_to_numpy(model.program.weight.value).copy()
    assert int(model.optimizer.iterations.numpy()) == 2
    restored = toy_model()
    BlackBoxTrainer(query).compile(restored, TrainingPlan.resolve(RECIPE, len(LABELS)))
    assert restore_checkpoint(restored, tmp_path) == 2  # saved as the failure stopped the run
    np.testing.assert_array_equal(restored.program.weight.numpy(), weight)


def test_the_query_budget_stops_training_before_it_is_exceeded():
    model = toy_model()
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), directions=4, max_queries=100)
    result = trainer.fit(model, toy_task(), RECIPE, verbose=False)
    assert (result.steps, trainer.queries) == (2, 80)
    with pytest.raises(ValueError, match="too few for one step of 40 frames"):
        BlackBoxTrainer(LocalQuery(model.backbone), directions=4, max_queries=30).fit(
            toy_model(), toy_task(), RECIPE, verbose=False)


class CountingCalls:
    """A query function that records each call's number of frames."""

    def __init__(self, query):
        self.query, self.calls = query, []

    def __call__(self, frames):
        self.calls.append(len(frames))
        return self.query(frames)


@pytest.mark.parametrize("label_map, steps, calls", [
    ("frequency", 2, [40, 24, 24]),
    ("iterative", 6, [40, *[24] * 5, 40, 24]),  # remapped before each epoch of 5 steps
])
def test_data_driven_maps_are_counted_from_the_query_functions_answers(label_map, steps, calls):
    model = toy_model()
    def refuse(*args, **kwargs):
        raise AssertionError("the model's own backbone was called")
    model.backbone.call = refuse
    backbone = build_backbone("tiny_cnn", None, seed=1)
    logits = keras.ops.convert_to_numpy(backbone(model.adversarial_inputs(IMAGES)))  # W = 0
    expected = frequency_map(logits.argmax(axis=1), LABELS, 2,
                             probabilities=keras.ops.convert_to_numpy(keras.ops.softmax(logits)))
    query = CountingCalls(LocalQuery(backbone))
    trainer = BlackBoxTrainer(query, directions=2)
    trainer.fit(model, toy_task(), RECIPE.replace(steps=steps, label_map=label_map),
                verbose=False)
    assert query.calls == calls and trainer.queries == sum(calls)
    if label_map == "frequency":
        assert model.label_map.groups == expected != [[0], [1]]


def test_the_query_budget_leaves_room_for_the_label_maps_sample():
    recipe = RECIPE.replace(label_map="frequency")
    model = toy_model()
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), directions=2, max_queries=40 + 24 + 23)
    result = trainer.fit(model, toy_task(), recipe, verbose=False)
    assert (result.steps, trainer.queries, trainer.stopped_by_queries) == (1, 64, True)
    with pytest.raises(ValueError, match="one step of 24 frames .* after the label map's 40 "
                                         "sample frames; raise max_queries"):
        BlackBoxTrainer(LocalQuery(model.backbone), directions=2, max_queries=63).fit(
            toy_model(), toy_task(), recipe, verbose=False)


def test_local_queries_refuse_bad_frames_and_answer_logits():
    backbone = build_backbone("tiny_cnn", None, seed=1)
    query = LocalQuery(backbone)
    with pytest.raises(QueryError, match=r"with k >= 1; got shape \(2, 32, 32, 3\)"):
        query(np.zeros((2, 32, 32, 3), "float32"))
    with pytest.raises(QueryError, match="finite pixel values in \\[-1, 1\\]"):
        query(np.full((2, 48, 48, 3), 2.0, "float32"))
    assert query.queries == 0
    frames = np.random.default_rng(0).uniform(-1, 1, (3, 48, 48, 3)).astype("float32")
    logits = query(frames)
    assert logits.shape == (3, 1000) and query.queries == 3
    probabilities = lambda frames: keras.ops.convert_to_numpy(keras.ops.softmax(query(frames)))
    shifted = log_probabilities(probabilities)(frames) - logits  # logits up to a constant per frame
    np.testing.assert_allclose(shifted, shifted[:, :1].repeat(1000, axis=1), atol=1e-3)


def test_a_recipe_names_its_trainer_and_the_estimator_settings():
    from arnn_tf.runs import make_trainer
    from arnn_tf.training.white_box import WhiteBoxTrainer

    model = toy_model()
    assert isinstance(make_trainer(RECIPE, model), WhiteBoxTrainer)
    recipe = RECIPE.replace(trainer="black_box", directions=3, beta=0.2, antithetic=True,
                            zo_resolution=None, max_queries=999)
    trainer = make_trainer(recipe, model)
    assert isinstance(trainer.query, LocalQuery) and trainer.query.backbone is model.backbone
    assert trainer.estimator == ZerothOrderEstimator(3, 0.2, True, None)
    assert trainer.max_queries == 999
    mine = LocalQuery(build_backbone("tiny_cnn", None, seed=1))
    assert make_trainer(recipe, model, mine).query is mine
    with pytest.raises(ValueError, match="a query function is for black-box training"):
        make_trainer(RECIPE, model, mine)


def test_directions_finer_than_the_program_are_refused_before_training():
    trainer = BlackBoxTrainer(lambda frames: frames, zo_resolution=64)
    with pytest.raises(ValueError, match="zo_resolution .*finer than the 48x48 program"):
        trainer.fit(toy_model(), toy_task(), RECIPE, verbose=False)
    assert trainer.queries == 0


def test_the_budget_says_it_stopped_training_short():
    model = toy_model()
    exact = BlackBoxTrainer(LocalQuery(model.backbone), directions=4, max_queries=160)
    exact.fit(model, toy_task(), RECIPE, verbose=False)  # 4 steps of 40 frames: all it needed
    short = BlackBoxTrainer(LocalQuery(model.backbone), directions=4, max_queries=159)
    short.fit(toy_model(), toy_task(), RECIPE, verbose=False)
    assert (exact.queries, exact.stopped_by_queries, short.queries, short.stopped_by_queries) == (
        160, False, 120, True)


def test_progress_shows_queries_whole(capsys):
    model = toy_model()
    BlackBoxTrainer(LocalQuery(model.backbone), directions=2).fit(
        model, toy_task(), RECIPE.replace(steps=2), verbose=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert lines[-1].startswith("step 2/2 - accuracy ") and " - queries 48 - " in lines[-1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    for split, count in (("train", 8), ("test", 2)):
        for name, value in (("dark", 30), ("bright", 220)):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.full((12, 12, 3), value + i, "uint8")).save(
                    root / split / name / f"{i}.png")
    return root


class Counting:
    """A query function of one's own: a `LocalQuery` that also records each call's size."""

    def __init__(self, backbone):
        self.local, self.calls = LocalQuery(backbone), []

    def __call__(self, frames):
        self.calls.append(len(frames))
        return self.local(frames)


def test_the_library_call_trains_a_black_box_recipe_through_the_query_it_is_given(folder, tmp_path):
    import json

    from arnn_tf import train

    recipe = RECIPE.replace(task=f"folder:{folder}", backbone="tiny_cnn", weights="none",
                            steps=3, batch_size=4, trainer="black_box", directions=2)
    query = Counting(build_backbone("tiny_cnn", None, seed=0))
    metrics = train(recipe, tmp_path / "run", query=query, verbose=False)
    assert query.calls == [4 * 3] * 3 and metrics["queries"] == 36
    assert metrics["stopped_by_queries"] is False and metrics["trainer"] == "black_box"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["queries"] == 36
    white = train(recipe.replace(trainer="white_box"), tmp_path / "white", verbose=False)
    assert "queries" not in white and "directions" not in white


class PredictHandler(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST ``:predict`` over a tiny Keras backbone, or a broken server."""

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.bodies.append(body)
        if self.path != "/v1/models/tiny:predict":
            return self.answer(404, b'{"error": "Servable not found for request: tiny2"}')
        if server.mode == "garbage":
            return self.answer(200, b"<html>it works!</html>")
        if server.mode == "error":
            return self.answer(503, b'{"error": "the model is reloading"}')
        logits = server.backbone.predict_on_batch(np.asarray(body["instances"], "float32"))
        rows = keras.ops.convert_to_numpy(logits)
        if server.mode == "short":
            rows = rows[:, :10]
        predictions = [{"logits": r.tolist()} for r in rows] if server.mode == "named" else rows.tolist()
        self.answer(200, json.dumps({"predictions": predictions}).encode())

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serving():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PredictHandler)
    server.backbone, server.mode, server.bodies = build_backbone("tiny_cnn", None, seed=1), "ok", []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def rest_query(server, **options):
    return RestQuery(f"http://127.0.0.1:{server.server_address[1]}/", "tiny", retries=0, **options)


@pytest.mark.parametrize("mode", ["ok", "named"])
def test_rest_queries_answer_as_the_backbone_in_chunks(serving, mode):
    serving.mode, serving.bodies[:] = mode, []
    frames = np.random.default_rng(0).uniform(-1, 1, (5, 48, 48, 3)).astype("float32")
    query = rest_query(serving, chunk=2)
    np.testing.assert_allclose(query(frames), LocalQuery(serving.backbone)(frames), atol=1e-5)
    assert (query.queries, query.requests) == (5, 3)
    assert [len(body["instances"]) for body in serving.bodies] == [2, 2, 1]
    assert serving.bodies[0]["signature_name"] == "serving_default"


def test_training_through_rest_matches_training_in_process(serving):
    serving.mode = "ok"
    remote, local = toy_model(), toy_model()
    query = rest_query(serving)
    trainer = BlackBoxTrainer(query, directions=2)
    trainer.fit(remote, toy_task(), RECIPE.replace(steps=2), verbose=False)
    BlackBoxTrainer(LocalQuery(local.backbone), directions=2).fit(
        local, toy_task(), RECIPE.replace(steps=2), verbose=False)
    assert query.queries == trainer.queries == 2 * 8 * 3
    np.testing.assert_allclose(remote.program.weight.numpy(), local.program.weight.numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("mode, model, message", [
    ("garbage", "tiny", r"answered something other than JSON predictions: '<html>it works!</html>'"),
    ("error", "tiny", r"did not answer the query: .*:predict: HTTP 503: the model is reloading"),
    ("ok", "tiny2", r"HTTP 404: Servable not found for request: tiny2"),
    ("short", "tiny", r"answered shape \(24, 10\) for 24 frames; expected \(24, 1000\)"),
])
def test_a_bad_server_is_a_query_error_and_w_is_unchanged(serving, mode, model, message):
    serving.mode = mode
    program = toy_model()
    query = RestQuery(f"http://127.0.0.1:{serving.server_address[1]}", model, retries=0)
    with pytest.raises(QueryError, match=message):
        BlackBoxTrainer(query, directions=2).fit(program, toy_task(), RECIPE, verbose=False)
    assert not program.program.weight.numpy().any()
    assert int(program.optimizer.iterations.numpy()) == 0


def test_an_unreachable_server_is_a_query_error():
    query = RestQuery("http://127.0.0.1:9", "tiny", retries=0, timeout=2)
    with pytest.raises(QueryError, match="did not answer the query: .*cannot connect"):
        query(np.zeros((1, 48, 48, 3), "float32"))
    assert query.queries == 0


def test_arnn_train_queries_a_served_backbone(serving, tmp_path, capsys):
    from PIL import Image

    from arnn_tf.cli.main import main

    serving.mode, serving.bodies[:] = "ok", []
    for split, count in (("train", 8), ("test", 4)):
        for name, value in (("dark", 30), ("bright", 220)):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.full((12, 12, 3), value + i, "uint8")).save(
                    tmp_path / "data" / split / name / f"{i}.png")
    url = f"http://127.0.0.1:{serving.server_address[1]}"
    assert main(["train", "--black-box", "--directions", "2", "--task", f"folder:{tmp_path / 'data'}",
                 "--backbone", "tiny_cnn", "--weights", "none", "--seed", "1", "--steps", "2",
                 "--batch-size", "4", "--query-url", url, "--query-model", "tiny",
                 "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # the default map warmup: W held for the first of the two steps, one frame an image
    assert metrics["queries"] == 4 + 4 * 3 == sum(len(b["instances"]) for b in serving.bodies)
    assert metrics["map_warmup_steps"] == 1
    assert "after 16 queries" in capsys.readouterr().out


def test_tensorboard_shows_accuracy_against_the_queries_spent_resumed_steps_included(tmp_path):
    from arnn_tf.training.summaries import ProgramSummaries

    def run(steps):
        model = toy_model()
        summaries = ProgramSummaries(tmp_path / "logs", IMAGES[:2], every_steps=1)
        BlackBoxTrainer(LocalQuery(model.backbone), directions=2).fit(
            model, toy_task(), RECIPE.replace(steps=steps), callbacks=[summaries],
            checkpoint_dir=tmp_path / "checkpoint", checkpoint_every=1, verbose=False)
        summaries.writer.flush()

    run(3)
    run(5)  # a new process's count starts at 0; the totals go on
    steps = sorted(
        event.step
        for path in (tmp_path / "logs").glob("events.out.tfevents.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value if value.tag == "accuracy_by_queries")
    assert steps == [24, 48, 72, 96, 120]  # 8 images x (1 + 2 directions) a step


class ServedExport:
    """A real `arnn export --backbone` SavedModel behind the loopback :predict double."""

    def __init__(self, path):
        self.serve = tf.saved_model.load(str(path)).signatures["serving_default"]

    def predict_on_batch(self, frames):
        return self.serve(frames=tf.constant(frames))["logits"].numpy()


def test_the_loss_goes_down_through_a_served_export_of_the_backbone(serving, tmp_path):
    from arnn_tf.export import export_backbone

    model = toy_model(label_map="linear")  # the served network is its backbone (seed 1)
    serving.mode, saved = "ok", serving.backbone
    serving.backbone = ServedExport(export_backbone("tiny_cnn", None, tmp_path, seed=1))
    try:
        query = rest_query(serving)
        before = task_loss(model, LocalQuery(model.backbone))
        recipe = RECIPE.replace(steps=10, label_map="linear")
        BlackBoxTrainer(query, directions=6).fit(model, toy_task(), recipe, verbose=False)
        assert task_loss(model, LocalQuery(model.backbone)) < before - 0.1
        assert np.any(model.program.weight.numpy()) and query.queries == 10 * 8 * 7
    finally:
        serving.backbone = saved


def test_grpc_queries_a_served_backbone_export_and_refuses_a_failing_server(tmp_path):
    pytest.importorskip("tensorflow_serving")
    from serving_doubles import ExportedModel, grpc_double

    from arnn_tf.black_box import GrpcQuery
    from arnn_tf.cli.commands.train import served_query
    from arnn_tf.export import export_backbone

    server = grpc_double(ExportedModel("tiny", export_backbone("tiny_cnn", None, tmp_path, seed=1)))
    try:
        query = served_query(f"grpc://{server.target}", "tiny", 30.0)
        assert isinstance(query, GrpcQuery)
        query.chunk = 2
        frames = np.random.default_rng(0).uniform(-1, 1, (5, 48, 48, 3)).astype("float32")
        local = LocalQuery(build_backbone("tiny_cnn", None, seed=1))
        np.testing.assert_allclose(query(frames), local(frames), atol=1e-5)
        assert (query.queries, query.requests) == (5, 3)
        model = toy_model()
        BlackBoxTrainer(query, directions=2).fit(model, toy_task(), RECIPE.replace(steps=2),
                                                 verbose=False)
        assert query.queries == 5 + 2 * 8 * 3 and np.any(model.program.weight.numpy())
        server.faults.fail_first, server.faults.requests = 10, 0
        broken, fresh = GrpcQuery(server.target, "tiny", retries=0), toy_model()
        with pytest.raises(QueryError, match="did not answer the query: .*UNAVAILABLE"):
            BlackBoxTrainer(broken, directions=2).fit(fresh, toy_task(), RECIPE, verbose=False)
        assert not fresh.program.weight.numpy().any() and broken.queries == 0
        server.faults.fail_first = 0
        with pytest.raises(QueryError, match="NOT_FOUND"):
            GrpcQuery(server.target, "other", retries=0)(frames)
    finally:
        server.close()


def test_a_stand_in_gives_w_the_gradient_white_box_training_gives_at_one_frame_an_image():
    from arnn_tf.recipes import program_rate_scale
    from arnn_tf.training.white_box import WhiteBoxTrainer

    recipe = RECIPE.replace(steps=3, trainer="black_box", stand_in="tiny_cnn")
    assert program_rate_scale(recipe) == 1.0  # a gradient, not a noisy estimate
    white = toy_model()
    WhiteBoxTrainer().fit(white, toy_task(), RECIPE.replace(steps=3), verbose=False)
    served = toy_model()
    query = LocalQuery(served.backbone)
    stand_in = build_backbone("tiny_cnn", None, seed=1)  # the served network's twin
    trainer = BlackBoxTrainer(query, stand_in=StandIn(stand_in))
    trainer.fit(served, toy_task(), recipe, verbose=False)
    assert query.queries == trainer.queries == 8 * 3
    np.testing.assert_allclose(served.program.weight.numpy(), white.program.weight.numpy(),
                               atol=1e-5)
    assert np.abs(white.program.weight.numpy()).max() > 0


def test_a_stand_in_is_built_from_the_recipe_and_checked_against_the_program():
    from arnn_tf.recipes import RecipeError
    from arnn_tf.runs import make_trainer

    model = toy_model()
    recipe = RECIPE.replace(trainer="black_box", stand_in="tiny_cnn", weights="none")
    built = make_trainer(recipe.replace(stand_in_rate=0.01), model).stand_in
    assert built.network.input_shape == model.backbone.input_shape and built.rate == 0.01
    small = build_backbone("tiny_cnn", None, input_size=16)
    with pytest.raises(ValueError, match="the stand-in network .* takes \\(16, 16, 3\\) frames"):
        BlackBoxTrainer(LocalQuery(model.backbone), stand_in=StandIn(small)).fit(
            model, toy_task(), recipe, verbose=False)
    with pytest.raises(RecipeError, match="'stand_in' .* needs trainer 'black_box'"):
        RECIPE.replace(stand_in="tiny_cnn")
    with pytest.raises(RecipeError, match="'stand_in_rate' fits a stand-in: it needs 'stand_in'"):
        RECIPE.replace(trainer="black_box", stand_in_rate=0.1)


def stand_in_run(steps, checkpoint_dir=None):
    """A run of the toy model with a stand-in (a network unlike the served one) fitted at
    every step; returns the model, the trainer and the stand-in."""
    model = toy_model(label_map="linear")
    stand_in = StandIn(build_backbone("tiny_cnn", None, seed=7), rate=0.01)
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), stand_in=stand_in)
    recipe = RECIPE.replace(trainer="black_box", stand_in="tiny_cnn", stand_in_rate=0.01,
                            label_map="linear", map_warmup_steps=0)
    trainer.fit(model, toy_task(), recipe.replace(steps=steps), checkpoint_dir=checkpoint_dir,
                verbose=False)
    return model, trainer, stand_in


def test_a_fitted_stand_in_learns_the_served_answers_and_resumes_as_it_was(tmp_path):
    straight, _, fitted = stand_in_run(4)
    frames = keras.ops.convert_to_numpy(straight.adversarial_inputs(IMAGES))
    def gap(network):  # from the served network's answers on the frames it was fitted on
        return float(np.mean((straight.backbone(frames).numpy() - network(frames).numpy()) ** 2))
    assert gap(fitted.network) < gap(build_backbone("tiny_cnn", None, seed=7))
    stand_in_run(2, tmp_path)
    resumed, trainer, again = stand_in_run(4, tmp_path)
    assert trainer.queries == 8 * 2  # the two steps it trained, one frame an image
    for a, b in zip(again.network.weights + resumed.trainable_variables,
                    fitted.network.weights + straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_a_draws_coefficients_lift_back_to_its_directions():
    mask = np.zeros((24, 24, 3), "float32")
    mask[:6] = 1.0
    for estimator, shape in ((ZerothOrderEstimator(3, zo_resolution=4, per_image=True),
                              mask.shape), (ZerothOrderEstimator(3), (20,))):
        where = mask if len(shape) == 3 else np.ones(shape, "float32")
        directions, coefficients = estimator.draw(where, np.random.default_rng(0), images=2)
        assert coefficients.shape[-1] == estimator.dimension(where)
        flat = directions.reshape(-1, *shape)
        for direction, coefficient in zip(flat, coefficients.reshape(len(flat), -1)):
            np.testing.assert_allclose(estimator.lift(coefficient, where), direction, atol=1e-6)


def test_a_pooled_jacobian_learns_a_shared_jacobian_from_many_steps():
    from arnn_tf.black_box.pooled_jacobian import PooledJacobian
    rng = np.random.default_rng(0)
    jacobian = rng.standard_normal((7, 30))  # 7 logits, 30 coefficients
    pooled = PooledJacobian(memory=200, dimension=30)
    with pytest.raises(ValueError, match="no steps yet"):
        pooled.gradient(np.ones(7))
    cosines = []
    for _ in range(200):
        directions = rng.standard_normal((4, 30))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        pooled.update(directions @ jacobian.T, directions)
        g = rng.standard_normal(7)
        cosines.append(cosine(pooled.gradient(g), jacobian.T @ g))
    assert cosines[0] < 0.7 and min(cosines[-20:]) > 0.9
    restored = PooledJacobian(memory=200, dimension=30)
    restored.restore(pooled.state())
    np.testing.assert_allclose(restored.gradient(np.ones(7)), pooled.gradient(np.ones(7)))
    with pytest.raises(ValueError, match=">= 1 step"):
        PooledJacobian(memory=0.5, dimension=3)


def pooled_run(steps, checkpoint_dir=None, map_warmup_steps=None, **options):
    model = toy_model(label_map="linear")
    options = {"jacobian_memory": 20, **options}
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), directions=4, zo_resolution=4,
                              **options)
    recipe = RECIPE.replace(steps=steps, label_map="linear", map_warmup_steps=map_warmup_steps)
    trainer.fit(model, toy_task(), recipe, checkpoint_dir=checkpoint_dir, verbose=False)
    return model, trainer


@pytest.mark.parametrize("pooling", [{"jacobian_memory": 10}, {"guide_rank": 5}])
@pytest.mark.parametrize("per_image", [False, True])
def test_estimates_pooled_or_guided_lower_the_loss_at_no_extra_query(per_image, pooling):
    model = toy_model()  # a fixed map: only W learns
    query = LocalQuery(model.backbone)
    before = task_loss(model, query)
    trainer = BlackBoxTrainer(query, directions=10, zo_resolution=4,
                              per_image_directions=per_image, **pooling)
    trainer.fit(model, toy_task(), RECIPE.replace(steps=20), verbose=False)
    assert task_loss(model, query) < before - 0.01
    assert trainer.queries == 20 * 8 * 11
    assert trainer.checkpoint_arrays()["pooled_jacobian"].shape == (1000, 4 * 4 * 3)
    assert trainer.guide is None or trainer.guide.guided == 5  # half of them guided


def test_the_pooled_jacobian_goes_through_a_checkpoint_so_a_resumed_run_is_the_same(tmp_path):
    straight, _ = pooled_run(4)
    pooled_run(2, checkpoint_dir=tmp_path)
    resumed, trainer = pooled_run(4, checkpoint_dir=tmp_path)
    assert trainer.queries == 2 * 8 * 5
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_a_pooled_jacobian_needs_directions_on_a_grid_or_a_code():
    model = toy_model()
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), zo_resolution=None, jacobian_memory=5)
    with pytest.raises(ValueError, match="needs directions on a grid"):
        trainer.compile(model, TrainingPlan.resolve(RECIPE, len(LABELS)))
