"""The backbone alone as a TF Serving model: X_adv frames in, logits out, bad frames refused."""

import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.cli.main import main
from arnn_tf.export import export_backbone


def test_the_exported_backbone_answers_its_logits_and_refuses_bad_frames(tmp_path):
    path = export_backbone("tiny_cnn", None, tmp_path / "backbone", seed=2)
    assert path == tmp_path / "backbone" / "1"
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    frames = np.random.default_rng(0).uniform(-1, 1, (3, 48, 48, 3)).astype("float32")
    expected = build_backbone("tiny_cnn", None, seed=2).predict(frames, verbose=0)
    np.testing.assert_allclose(serve(frames=tf.constant(frames))["logits"].numpy(), expected,
                               atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="within \\[-1, 1\\]"):
        serve(frames=tf.constant(frames * 3))
    np.testing.assert_allclose(serve(frames=tf.constant(frames))["logits"].numpy(), expected,
                               atol=1e-5)  # the next request is served as usual


def test_arnn_export_backbone(tmp_path, capsys):
    out = tmp_path / "served"
    assert main(["export", "--backbone", "tiny_cnn", "--weights", "none", "--out", str(out)]) == 0
    assert "frames" in capsys.readouterr().out and (out / "1" / "saved_model.pb").exists()
    with pytest.raises(SystemExit):
        main(["export", "--backbone", "tiny_cnn", "--program", "p", "--out", str(out)])


def test_arnn_export_backbone_at_a_run_s_frame_size(tmp_path, capsys):
    out = tmp_path / "served"
    args = ["export", "--backbone", "efficientnet_lite0", "--weights", "none", "--out", str(out)]
    assert main([*args, "--frame-size", "64"]) == 0
    serve = tf.saved_model.load(str(out / "1")).signatures["serving_default"]
    assert serve.structured_input_signature[1]["frames"].shape.as_list() == [None, 64, 64, 3]
    assert main(["export", "--program", "p", "--frame-size", "64", "--out", str(out)]) == 2
    assert "--frame-size goes with --backbone" in capsys.readouterr().err
