"""CMA-ES over a program's code: the search, its replay, and black-box training with it."""

import keras
import numpy as np
import pytest

from arnn_tf.backbones import build_backbone
from arnn_tf.black_box import BlackBoxTrainer, LocalQuery
from arnn_tf.black_box.evolution import CodeEvolution
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.recipes import RecipeError
from tests.test_black_box import IMAGES, LABELS, RECIPE, toy_task

pytest.importorskip("cma")


def code_model(label_map="first"):
    backbone = build_backbone("tiny_cnn", None, seed=1)
    return build_reprogrammed_model(backbone, (12, 12, 1), 2, label_map=label_map, l2=1e-4,
                                    code={"code_dimension": 12, "code_seed": 3})


def cma_recipe(**fields):
    settings = {"trainer": "black_box", "program_update": "cma", "code_dimension": 12,
                "directions": 6, "beta": 0.5}
    return RECIPE.replace(**{**settings, **fields})


def mean_loss(model, query):
    logits = query(keras.ops.convert_to_numpy(model.adversarial_inputs(IMAGES)))
    return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        LABELS, model.label_map(logits))))


class StopAfter(keras.callbacks.Callback):
    """Stops training after ``steps`` batches, as a time limit would."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        self.steps -= 1
        if self.steps == 0:
            self.model.stop_training = True


def test_the_search_finds_a_quadratics_minimum_and_replays_what_it_was_told():
    target = np.linspace(-1, 1, 8)
    search = CodeEvolution(8, population=10, sigma=0.5, seed=2)
    search.start(np.zeros(8))
    for _ in range(60):
        losses = np.sum((search.candidates() - target) ** 2, axis=1).astype("float32")
        mean = search.tell(losses)
    assert np.sum((mean - target) ** 2) < 0.05 * np.sum(target**2)
    replayed = CodeEvolution(8, population=10, sigma=0.5, seed=2)
    replayed.restore(search.state())
    replayed.resume(np.ones(8), generation=60)  # a restored state's start, not this code
    np.testing.assert_array_equal(replayed.mean, mean)
    np.testing.assert_array_equal(replayed.candidates(), search.candidates())


def test_a_generation_needs_one_loss_a_candidate():
    search = CodeEvolution(4, population=3, sigma=0.1, seed=0)
    search.start(np.zeros(4))
    search.candidates()
    with pytest.raises(ValueError, match="a generation needs 3 losses, one a candidate"):
        search.tell([1.0, 2.0])
    with pytest.raises(ValueError, match="a population of at least 2"):
        CodeEvolution(4, population=1, sigma=0.1, seed=0)


def test_black_box_cma_lowers_the_loss_and_asks_the_mean_and_each_candidate():
    model = code_model()  # a fixed map: only W learns, from the ranked candidates alone
    query = LocalQuery(model.backbone)
    before = mean_loss(model, query)
    trainer = BlackBoxTrainer(query, directions=6, beta=0.5)
    trainer.fit(model, toy_task(), cma_recipe(steps=40), verbose=False)
    assert mean_loss(model, query) < before - 0.01
    assert trainer.queries == 40 * 8 * (1 + 6)
    np.testing.assert_array_equal(model.program.weight.numpy(), trainer.evolution.mean)


def test_a_cma_run_stopped_and_resumed_ends_where_the_uninterrupted_run_ends(tmp_path):
    recipe = cma_recipe(steps=6, label_map="linear")  # the map alone for 3 steps, then W too
    straight = code_model("linear")
    BlackBoxTrainer(LocalQuery(straight.backbone), directions=6, beta=0.5).fit(
        straight, toy_task(), recipe, verbose=False)
    first = code_model("linear")
    BlackBoxTrainer(LocalQuery(first.backbone), directions=6, beta=0.5).fit(
        first, toy_task(), recipe, callbacks=[StopAfter(5)], checkpoint_dir=tmp_path,
        verbose=False)
    resumed = code_model("linear")
    result = BlackBoxTrainer(LocalQuery(resumed.backbone), directions=6, beta=0.5).fit(
        resumed, toy_task(), recipe, checkpoint_dir=tmp_path, verbose=False)
    assert (result.steps, result.resumed_from) == (6, 5)
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    longer = BlackBoxTrainer(LocalQuery(resumed.backbone), directions=6, beta=0.5).fit(
        code_model("linear"), toy_task(), recipe.replace(steps=8), checkpoint_dir=tmp_path,
        verbose=False)  # a run given more steps goes on with the same search
    assert (longer.steps, longer.resumed_from) == (8, 6)


def test_cma_is_refused_without_a_code_or_outside_black_box_training():
    with pytest.raises(RecipeError, match="'cma' searches a program's code through queries"):
        cma_recipe(code_dimension=None)
    with pytest.raises(RecipeError, match="needs trainer 'black_box'"):
        cma_recipe(trainer="white_box")
    with pytest.raises(RecipeError, match=r"one generation for the batch"):
        cma_recipe(per_image_directions=True)
