"""Directions guided by the logits' pooled Jacobian (`arnn_tf.black_box.guided_directions`)."""

import numpy as np
import pytest

from arnn_tf.black_box import BlackBoxTrainer, LocalQuery, ZerothOrderEstimator
from arnn_tf.black_box.guided_directions import GuidedDirections
from arnn_tf.recipes import RecipeError
from arnn_tf.training.plan import TrainingPlan
from tests.test_black_box import LABELS, RECIPE, cosine, pooled_run, toy_model

CODE = np.ones(40, "float32")  # directions in a code's 40 numbers: no upsampling


def planted_step(guide, estimator, rng, jacobian, logit_gradients):
    """One step's guided estimate for images whose logits are ``jacobian @ W`` (shared) and
    whose losses are linear in the logits, with ``logit_gradients`` ``[images, classes]``."""
    directions, coefficients = guide.draw(estimator, CODE, rng, len(logit_gradients))
    points = estimator.points(np.zeros(40, "float32"), directions)
    logits = np.einsum("kd,pd->pk", jacobian, points.reshape(len(points), 40))
    losses = logits @ logit_gradients.T  # [points, images]
    changes = estimator.slopes(np.repeat(logits[:, None], len(logit_gradients), axis=1))
    return guide.estimate(estimator, losses, changes, coefficients, CODE)


def test_guided_directions_lie_in_the_subspace_or_outside_it_and_are_unit():
    estimator = ZerothOrderEstimator(6, zo_resolution=None)
    guide = GuidedDirections(rank=3, share=0.5, memory=10, dimension=40)
    rng = np.random.default_rng(0)
    before, _ = guide.draw(estimator, CODE, rng, images=2)
    np.testing.assert_allclose(before, estimator.draw(CODE, np.random.default_rng(0))[0])
    assert guide.guided == 0
    guide.pooled.update(rng.standard_normal((8, 5)), rng.standard_normal((8, 40)))
    directions, coefficients = guide.draw(estimator, CODE, rng, images=2)
    basis = guide.tracked  # the basis the draw used
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-6)
    assert guide.guided == 3 and directions.shape == (6, 40)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, atol=1e-5)
    inside = basis @ (basis.T @ directions.T)
    np.testing.assert_allclose(inside[:, :3], directions[:3].T, atol=1e-5)
    np.testing.assert_allclose(basis.T @ directions[3:].T, 0.0, atol=1e-5)


def test_guided_estimates_expect_the_gradient_and_beat_unguided_ones_on_a_low_rank_jacobian():
    rng = np.random.default_rng(1)
    jacobian = rng.standard_normal((20, 4)) @ rng.standard_normal((4, 40))  # rank 4 in 40
    estimator = ZerothOrderEstimator(4, beta=0.01, zo_resolution=None)
    guided = GuidedDirections(rank=4, share=0.5, memory=20, dimension=40)
    plain = GuidedDirections(rank=4, share=0.5, memory=20, dimension=40)
    guided_cosines, plain_cosines = [], []
    for _ in range(150):
        logit_gradients = rng.standard_normal((3, 20))
        gradient = jacobian.T @ logit_gradients.mean(axis=0)
        estimate = planted_step(guided, estimator, rng, jacobian, logit_gradients)
        guided_cosines.append(cosine(estimate, gradient))
        plain.pooled.jacobian = None  # never guided: the whole space every step
        plain_cosines.append(cosine(planted_step(plain, estimator, rng, jacobian,
                                                 logit_gradients), gradient))
    assert np.mean(guided_cosines[-50:]) > np.mean(plain_cosines[-50:]) + 0.2
    fixed = jacobian.T @ np.ones(20)
    many = sum(planted_step(guided, estimator, rng, jacobian, np.ones((3, 20)))
               for _ in range(300))
    assert cosine(many, fixed) > 0.9  # the guide changes where it looks, not what it expects


def test_a_guides_rank_and_share_are_checked():
    with pytest.raises(ValueError, match="rank must be between 1 and"):
        GuidedDirections(rank=40, share=0.5, memory=10, dimension=40)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        GuidedDirections(rank=3, share=1.0, memory=10, dimension=40)


def guided_run(steps, checkpoint_dir=None):
    return pooled_run(steps, checkpoint_dir, map_warmup_steps=0, guide_rank=5, jacobian_memory=10)


def test_a_guided_run_resumed_from_its_checkpoint_is_the_same(tmp_path):
    straight, _ = guided_run(6)
    guided_run(3, checkpoint_dir=tmp_path)
    resumed, trainer = guided_run(6, checkpoint_dir=tmp_path)
    assert trainer.queries == 3 * 8 * 5 and trainer.guide.guided == 2
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_a_guide_needs_directions_on_a_grid_and_a_black_box_recipe():
    model = toy_model()
    trainer = BlackBoxTrainer(LocalQuery(model.backbone), zo_resolution=None, guide_rank=5)
    with pytest.raises(ValueError, match="needs directions on a grid"):
        trainer.compile(model, TrainingPlan.resolve(RECIPE, len(LABELS)))
    with pytest.raises(RecipeError, match="'guide_rank' pools the estimated Jacobians"):
        RECIPE.replace(guide_rank=5)
    with pytest.raises(RecipeError, match="'guide_share' must be a number strictly between"):
        RECIPE.replace(trainer="black_box", guide_rank=5, guide_share=0.0)


def test_the_tracked_basis_reaches_the_jacobians_top_singular_subspace():
    guide = GuidedDirections(rank=3, share=0.5, memory=10, dimension=40)
    rng = np.random.default_rng(2)
    left = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    right = np.linalg.qr(rng.standard_normal((40, 20)))[0]
    singular = np.r_[10.0, 9.0, 8.0, np.linspace(1.0, 0.1, 17)]
    guide.pooled.jacobian = left @ np.diag(singular) @ right.T
    for _ in range(30):
        basis = guide.next_basis()
    top = right[:, :3]
    np.testing.assert_allclose(basis @ basis.T, top @ top.T, atol=1e-6)
