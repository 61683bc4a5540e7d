"""The serving client end to end against test doubles of TF Serving's REST and gRPC APIs.

The doubles are in tests/serving_doubles.py.
"""

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving_doubles import ExportedModel, RestDouble, grpc_double

from arnn_tf.backbones import build_backbone
from arnn_tf.cli.commands.query import run as query_command
from arnn_tf.cli.main import build_parser
from arnn_tf.export import export_programs
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.serving import GrpcClient, RestClient, ServingError, ServingTimeout, signature_input
from arnn_tf.serving.retries import with_retries


def _has_serving_api():
    try:
        import tensorflow_serving.apis.prediction_service_pb2_grpc  # noqa: F401
    except ImportError:
        return False
    return True


NO_SERVING_API = "tensorflow-serving-api (the serving extra) is not installed"
needs_serving_api = pytest.mark.skipif(not _has_serving_api(), reason=NO_SERVING_API)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An exported 10x10 RGB, 3-class program, its Keras model, PNG files, and both doubles."""
    root = tmp_path_factory.mktemp("serving")
    backbone = build_backbone("tiny_cnn", None, seed=3)
    model = build_reprogrammed_model(backbone, (10, 10, 3), 3, label_map="random", seed=1)
    model.program.weight.assign(np.random.default_rng(1).normal(size=model.program.weight.shape))
    saved = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3,
                                    task_name="toy", class_names=["zero", "one", "two"])
    exported = ExportedModel("arnn", export_programs([saved], root / "arnn"))
    images = np.random.default_rng(2).integers(0, 256, (3, 10, 10, 3)).astype("uint8")
    files = []
    for k, pixels in enumerate(images):
        files.append(root / f"{k}.png")
        Image.fromarray(pixels).save(files[-1])
    rest = RestDouble(exported)
    grpc_server = grpc_double(exported) if _has_serving_api() else None
    yield {"images": images, "files": files, "expected": model.predict(images, verbose=0),
           "rest": rest, "grpc": grpc_server}
    rest.close()
    if grpc_server is not None:
        grpc_server.close()


@pytest.fixture(autouse=True)
def no_faults(setup):
    for server in (setup["rest"], setup["grpc"]):
        if server is not None:
            server.faults.fail_first, server.faults.delay, server.faults.requests = 0, 0.0, 0


# Generous: with 5 s, the request after two failed ones once went unanswered on the CI machine
# (not reproduced here in 20 runs of this file). The timeout test sets its own short timeout.
CLIENT_TIMEOUT = 60


def _clients(setup):
    rest, grpc = setup["rest"], setup["grpc"]
    yield "rest", RestClient(rest.url, timeout=CLIENT_TIMEOUT, backoff=0.01), rest
    if grpc is not None:
        yield "grpc", GrpcClient(grpc.target, timeout=CLIENT_TIMEOUT, backoff=0.01), grpc


def test_predict_pixels_and_bytes_match_keras(setup):
    png = np.array([f.read_bytes() for f in setup["files"]], dtype=object)
    for kind, client, _ in _clients(setup):
        pixels = client.predict("arnn", {"images": setup["images"]})
        encoded = client.predict("arnn", {"image_bytes": png}, signature="predict_bytes", version=1)
        for outputs in (pixels, encoded):
            np.testing.assert_allclose(outputs["probabilities"], setup["expected"], atol=1e-4,
                                       err_msg=kind)
            assert outputs["class_ids"].tolist() == setup["expected"].argmax(1).tolist()
            assert [str(n) for n in outputs["class_names"]] == [
                ["zero", "one", "two"][i] for i in setup["expected"].argmax(1)]


def test_metadata_is_the_same_for_both_protocols(setup):
    forms = {}
    for kind, client, _ in _clients(setup):
        signatures = client.metadata("arnn")["metadata"]["signature_def"]["signature_def"]
        forms[kind] = signatures
        images = signatures["serving_default"]["inputs"]["images"]
        assert images["dtype"] == "DT_UINT8"
        assert [int(d["size"]) for d in images["tensor_shape"]["dim"]] == [-1, 10, 10, 3]
        assert signatures["predict_bytes"]["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    if "grpc" in forms:
        assert forms["grpc"] == forms["rest"]


def test_bad_requests_are_not_retried_and_server_keeps_serving(setup):
    for kind, client, server in _clients(setup):
        with pytest.raises(ServingError, match="not a JPEG or PNG") as raised:
            client.predict("arnn", {"image_bytes": np.array([b"junk"], dtype=object)},
                           signature="predict_bytes")
        assert not raised.value.retryable and server.faults.requests == 1, kind
        with pytest.raises(ServingError, match="images must be uint8"):
            client.predict("arnn", {"images": setup["images"][:, :5]})
        with pytest.raises(ServingError):
            client.predict("nope", {"images": setup["images"]})
        assert client.predict("arnn", {"images": setup["images"]})["probabilities"].shape == (3, 3)


def test_retries_after_unavailable_then_succeeds(setup):
    for kind, client, server in _clients(setup):
        server.faults.requests, server.faults.fail_first = 0, 2
        outputs = client.predict("arnn", {"images": setup["images"]})
        assert outputs["probabilities"].shape == (3, 3), kind
        assert server.faults.requests == 3
        server.faults.requests, server.faults.fail_first = 0, 10
        client.retries = 1
        with pytest.raises(ServingError, match="503|UNAVAILABLE") as raised:
            client.predict("arnn", {"images": setup["images"]})
        assert raised.value.retryable and server.faults.requests == 2


def test_timeouts_are_reported_not_retried(setup):
    for kind, client, server in _clients(setup):
        server.faults.delay = 1.0
        client.timeout = 0.2
        with pytest.raises(ServingTimeout):
            client.predict("arnn", {"images": setup["images"]})
        assert _requests_seen(server.faults) == 1, kind
        server.faults.delay = 0.0


def _requests_seen(faults, wait: float = 5.0) -> int:
    """The server's request count once its handler thread has counted the timed-out request.

    The client gives up before a loaded machine's handler may have started, so the count is
    read after the handler has had time to run, not at the moment the client raises.
    """
    deadline = time.monotonic() + wait
    while faults.requests == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(faults.delay)
    return faults.requests


def test_unreachable_server_retries_with_backoff():
    waits = []

    def refuse():
        raise ServingError("cannot connect", retryable=True)

    with pytest.raises(ServingError, match="cannot connect"):
        with_retries(refuse, retries=3, backoff=0.5, sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0]
    with pytest.raises(ServingError, match="cannot connect"):  # a closed port, for real
        RestClient("http://127.0.0.1:9", timeout=1, retries=1, backoff=0.01).metadata("arnn")


def test_signature_input_refusals_name_the_signature_and_its_inputs():
    def metadata(inputs):
        signature = {"inputs": {name: {"dtype": "DT_UINT8"} for name in inputs}}
        return {"metadata": {"signature_def": {"signature_def": {"two": signature}}}}

    with pytest.raises(ValueError, match="no signature 'one'; it has two"):
        signature_input(metadata(["a"]), "one")
    with pytest.raises(ValueError, match=r"'two' takes 2 inputs \(a, b\); image files can be sent "
                                         "only to a signature with one input"):
        signature_input(metadata(["a", "b"]), "two")
    assert signature_input(metadata(["a"]), "two") == ("a", "DT_UINT8", [])


@pytest.mark.parametrize("signature", ["predict_bytes", "serving_default"])
def test_query_command(setup, capsys, signature):
    parser = build_parser()
    for kind, _, server in _clients(setup):
        url = server.url if kind == "rest" else server.target
        args = parser.parse_args(["query", "--url", url, *(["--grpc"] if kind == "grpc" else []),
                                  "--signature", signature, *map(str, setup["files"]), "--json"])
        results = query_command(args)
        printed = json.loads(capsys.readouterr().out)
        assert printed == results
        np.testing.assert_allclose([r["probabilities"] for r in results], setup["expected"],
                                   atol=1e-4)


def test_rest_double_accepts_the_readme_curl_bodies(setup):
    import base64
    import urllib.request

    png = io.BytesIO()
    Image.fromarray(setup["images"][0]).save(png, "PNG")
    bodies = [{"instances": setup["images"][:1].tolist()},
              {"signature_name": "predict_bytes",
               "instances": [{"b64": base64.b64encode(png.getvalue()).decode()}]}]
    for body in bodies:
        request = urllib.request.Request(setup["rest"].url + "/v1/models/arnn:predict",
                                         json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
            prediction = json.loads(response.read())["predictions"][0]
        np.testing.assert_allclose(prediction["probabilities"], setup["expected"][0], atol=1e-4)


SERVING_DIR = Path(__file__).parents[1] / "serving"


def test_models_config_parses_as_a_model_server_config():
    config_pb2 = pytest.importorskip("tensorflow_serving.config.model_server_config_pb2",
                                     reason=NO_SERVING_API)
    from google.protobuf import text_format

    config = text_format.Parse((SERVING_DIR / "models.config").read_text(),
                               config_pb2.ModelServerConfig())
    models = {m.name: m for m in config.model_config_list.config}
    assert sorted(models) == ["counting", "programs"]
    assert all(m.base_path == f"/models/{m.name}" and m.model_platform == "tensorflow"
               for m in models.values())
    assert list(models["programs"].model_version_policy.specific.versions) == [1, 2]


def test_batching_parameters_are_consistent():
    text = (SERVING_DIR / "batching_parameters.txt").read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    wrapped = dict(re.fullmatch(r"(\w+) \{ value: (\d+) \}", line).groups()
                   for line in lines if "{" in line)
    allowed = [int(re.fullmatch(r"allowed_batch_sizes: (\d+)", line)[1])
               for line in lines if "{" not in line]
    assert set(wrapped) == {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                            "num_batch_threads"}
    assert allowed == sorted(allowed) and allowed[-1] == int(wrapped["max_batch_size"])
    compose = (SERVING_DIR / "docker-compose.yml").read_text()
    for flag in ("--model_config_file=/config/models.config",
                 "--batching_parameters_file=/config/batching_parameters.txt",
                 '"8500:8500"', '"8501:8501"'):
        assert flag in compose


@needs_serving_api
def test_grpc_is_covered(setup):
    """The other tests run their gRPC half only when the stubs import.

    This one makes a missing extra visible.
    """
    client = GrpcClient(setup["grpc"].target, timeout=CLIENT_TIMEOUT)
    # Int64Value in JSON form, as REST gives it
    assert client.metadata("arnn", version=1)["model_spec"]["version"] == "1"
    client.close()
