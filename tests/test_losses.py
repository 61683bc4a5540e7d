"""The recipe's loss (cross-entropy or focal) and the program's own learning rate."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.black_box import BlackBoxTrainer, LocalQuery
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.recipes import RECIPES
from arnn_tf.training.losses import FocalCrossentropy, task_loss
from arnn_tf.training.optimizers import ScaledRateAdam
from arnn_tf.training.plan import TrainingPlan
from arnn_tf.training.white_box import WhiteBoxTrainer

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (16, 12, 12, 1)).astype("uint8")
LABELS = (IMAGES.mean(axis=(1, 2, 3)) > 127).astype("int32")
RECIPE = RECIPES["paper"].replace(steps=1, batch_size=8, label_map="linear")


def toy_task():
    return ImageTask("toy", (12, 12, 1), ("a", "b"),
                lambda split: tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)))


def toy_model():
    return build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=1), (12, 12, 1), 2,
                                    label_map="linear", seed=0)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 4.0])
def test_focal_loss_is_keras_focal_loss_on_integer_labels(gamma):
    probabilities = RNG.dirichlet(np.ones(5), size=6).astype("float32")
    labels = RNG.integers(0, 5, 6)
    mine = FocalCrossentropy(gamma).call(labels, probabilities)
    theirs = keras.losses.categorical_focal_crossentropy(
        keras.ops.one_hot(labels, 5), probabilities, alpha=1.0, gamma=gamma)
    np.testing.assert_allclose(mine, theirs, rtol=1e-4)
    if gamma == 0:
        np.testing.assert_allclose(
            mine, keras.losses.sparse_categorical_crossentropy(labels, probabilities), rtol=1e-5)


def test_focal_loss_weighs_down_examples_already_right():
    confident, unsure = FocalCrossentropy(2.0).call(np.array([0, 0]),
                                                    np.array([[0.95, 0.05], [0.3, 0.7]]))
    cross_entropy = -np.log([0.95, 0.3])
    assert confident / cross_entropy[0] < 0.01 < 0.4 < unsure / cross_entropy[1]
    with pytest.raises(ValueError, match="gamma must be a number >= 0, got -1"):
        FocalCrossentropy(-1)


def test_both_trainers_train_on_the_recipes_loss():
    recipe = RECIPE.replace(loss="focal", focal_gamma=3.0)
    model = toy_model()
    images, labels = IMAGES[:8], LABELS[:8]
    expected = float(keras.ops.mean(FocalCrossentropy(3.0).call(labels, model(images))))
    result = BlackBoxTrainer(LocalQuery(model.backbone), directions=2).fit(
        model, toy_task(), recipe, shuffle=False, verbose=False)
    assert isinstance(model.loss, FocalCrossentropy) and model.loss.gamma == 3.0
    assert result.history["loss"] == [pytest.approx(expected, rel=1e-4)]  # W = 0: no l2 term
    white = toy_model()
    WhiteBoxTrainer().fit(white, toy_task(), recipe, verbose=False)
    assert isinstance(white.loss, FocalCrossentropy) and white.loss.gamma == 3.0
    assert isinstance(task_loss(RECIPE), keras.losses.SparseCategoricalCrossentropy)


def moves(recipe):
    """How far W and the linear map move in one white-box step from the same start."""
    model = toy_model()
    before = [keras.ops.convert_to_numpy(v.value).copy() for v in model.trainable_variables]
    WhiteBoxTrainer().fit(model, toy_task(), recipe, shuffle=False, verbose=False)
    return model, [np.abs(keras.ops.convert_to_numpy(v.value) - b).max()
                   for v, b in zip(model.trainable_variables, before)]


def test_the_program_can_learn_slower_than_the_map():
    model, full = moves(RECIPE)
    assert not isinstance(model.optimizer, ScaledRateAdam)
    model, tenth = moves(RECIPE.replace(program_lr_scale=0.1))
    assert isinstance(model.optimizer, ScaledRateAdam)
    weight = [v is model.program.weight for v in model.trainable_variables].index(True)
    for i, (slow, fast) in enumerate(zip(tenth, full)):
        assert slow == pytest.approx(fast * (0.1 if i == weight else 1), rel=1e-3)
    assert full[weight] > 0


def test_a_variables_own_first_moment_decay_is_adams_with_that_beta_1():
    """Two steps with opposite gradients: the first moments differ only through beta_1."""
    start = np.array([1.0, -2.0, 0.5], "float32")
    fast, slow = keras.Variable(start, name="fast"), keras.Variable(start, name="slow")
    both = ScaledRateAdam(0.1, {fast.path: 0.5}, first_moments={fast.path: 0.0})
    references = [(keras.Variable(start), keras.optimizers.Adam(0.05, beta_1=0.0)),
                  (keras.Variable(start), keras.optimizers.Adam(0.1))]
    for gradient in (np.array([1.0, 2.0, -1.0], "float32"), np.array([-3.0, 1.0, 2.0], "float32")):
        both.apply_gradients([(gradient, fast), (gradient, slow)])
        for variable, optimizer in references:
            optimizer.apply_gradients([(gradient, variable)])
    for variable, (reference, _) in zip((fast, slow), references):
        np.testing.assert_allclose(variable.numpy(), reference.numpy(), rtol=1e-6)
    assert both.beta_1 == 0.9
    again = ScaledRateAdam.from_config(both.get_config())
    assert (again.rate_scales, again.first_moments) == ({fast.path: 0.5}, {fast.path: 0.0})


def test_a_nesterov_variable_steps_as_keras_sgd_with_nesterov_momentum_the_others_as_adam():
    start = np.array([1.0, -2.0, 0.5], "float32")
    program, other = keras.Variable(start, name="program"), keras.Variable(start, name="other")
    both = ScaledRateAdam(0.1, {program.path: 0.5}, first_moments={program.path: 0.8},
                          nesterov=[program.path])
    references = [(keras.Variable(start), keras.optimizers.SGD(0.05, momentum=0.8, nesterov=True)),
                  (keras.Variable(start), keras.optimizers.Adam(0.1))]
    for gradient in (np.array([1.0, 2.0, -1.0], "float32"), np.array([-3.0, 1.0, 2.0], "float32"),
                     np.array([0.5, 0.5, 4.0], "float32")):
        both.apply_gradients([(gradient, program), (gradient, other)])
        for variable, optimizer in references:
            optimizer.apply_gradients([(gradient, variable)])
    for variable, (reference, _) in zip((program, other), references):
        np.testing.assert_allclose(variable.numpy(), reference.numpy(), rtol=1e-6)
    assert ScaledRateAdam.from_config(both.get_config()).nesterov == [program.path]


def test_the_recipes_program_update_builds_the_nesterov_step_for_w_alone():
    model, moved = moves(RECIPE.replace(program_update="nesterov"))
    assert model.optimizer.nesterov == [model.program.weight.path] and max(moved) > 0


def test_the_maps_warmup_holds_w_and_moves_the_map():
    model, held = moves(RECIPE.replace(map_warmup_steps=1))
    weight = [v is model.program.weight for v in model.trainable_variables].index(True)
    assert held[weight] == 0 and max(held) > 0
    assert model.optimizer.start_steps == {model.program.weight.path: 1}
    model, started = moves(RECIPE.replace(map_warmup_steps=1, steps=2))
    assert started[weight] > 0


def test_a_black_box_recipe_steps_w_at_a_hundredth_of_the_rate_by_default():
    model = toy_model()
    BlackBoxTrainer(LocalQuery(model.backbone)).compile(
        model, TrainingPlan.resolve(RECIPE.replace(trainer="black_box", map_warmup_steps=0), 4))
    assert model.optimizer.rate_scales == {model.program.weight.path: 0.01}
    BlackBoxTrainer(LocalQuery(model.backbone)).compile(model, TrainingPlan.resolve(
        RECIPE.replace(trainer="black_box", program_lr_scale=1.0, map_warmup_steps=0), 4))
    assert not isinstance(model.optimizer, ScaledRateAdam)
