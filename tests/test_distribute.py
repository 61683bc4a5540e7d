"""Distribution strategies give the same program as a single device on the same data order.

Each run is its own process: logical devices and TF_CONFIG must be set before TensorFlow
starts. The multi-worker run uses two local worker processes on loopback ports.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parent / "scripts" / "train_tiny.py"


def run_script(out, *args, env=None):
    return subprocess.Popen([sys.executable, str(SCRIPT), "--out", str(out), *args],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(process, timeout=180):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def single_device_program(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "w.npy"
    finish(run_script(out, "--strategy", "one_device"))
    return np.load(out)


def test_mirrored_on_two_logical_cpus_matches_one_device(single_device_program, tmp_path):
    out = tmp_path / "w.npy"
    output = finish(run_script(out, "--strategy", "mirrored", "--logical-cpus", "2"))
    assert "replicas 2" in output
    assert np.abs(single_device_program).max() > 0.01  # training moved W
    np.testing.assert_allclose(np.load(out), single_device_program, atol=1e-5)


def test_multi_worker_with_two_local_workers_matches_one_device(single_device_program, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [run_script(tmp_path / f"w{i}.npy", "--strategy", "multi_worker",
                          env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
               for i in range(2)]
    outputs = [finish(worker) for worker in workers]
    assert all("replicas 2" in output for output in outputs)
    assert not (tmp_path / "w1.npy").exists()  # only the chief (worker 0) writes
    np.testing.assert_allclose(np.load(tmp_path / "w0.npy"), single_device_program, atol=1e-5)


def test_auto_strategy_is_mirrored_only_over_several_gpus():
    import tensorflow as tf

    from arnn_tf.training.distribute import make_strategy

    strategy = make_strategy("auto")
    if len(tf.config.list_logical_devices("GPU")) > 1:
        assert isinstance(strategy, tf.distribute.MirroredStrategy)
    else:  # Keras trains under the default strategy without distribution machinery
        assert strategy is tf.distribute.get_strategy()
        assert not tf.distribute.has_strategy()
