"""Read PyTorch state-dict files into numpy arrays, without torch and without running code.

A ``.pth`` file is a pickle, and unpickling can call any importable function. This module
only ever unpickles through :class:`_RestrictedUnpickler`, whose ``find_class`` resolves
the handful of globals a state dict of tensors refers to (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and friends, ``torch.<Type>Storage``) to harmless
local stand-ins and refuses everything else with :class:`UnsafePickleError`.

Two on-disk layouts are understood:

* the legacy format (``torch.save`` before 1.6, or ``_use_new_zipfile_serialization=False``):
  five pickles back to back (magic number, protocol version, sys info, the object, the list
  of storage keys) followed by each storage's raw bytes, each prefixed by its element count
  as an 8-byte little-endian integer, in the order of that key list;
* the zip format (1.6 and later): ``<archive>/data.pkl`` plus one ``<archive>/data/<key>``
  member of raw bytes per storage.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "UnsafePickleError",
    "load_torch_state_dict",
    "LEGACY_MAGIC_NUMBER",
    "LEGACY_PROTOCOL_VERSION",
]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that a plain state dict of tensors never needs."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.<Type>Storage``: only remembers the element dtype."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by a persistent id; its bytes are read after the pickle."""

    key: str
    dtype: np.dtype
    view_offset: int = 0
    view_size: int | None = None


@dataclass(frozen=True)
class _TensorSpec:
    """What ``_rebuild_tensor_v2`` was asked to build, materialised once storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage: _StorageRef, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> _TensorSpec:
    """Stand-in for ``torch._utils._rebuild_tensor``."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(f"tensor built on {type(storage).__name__}, not a storage")
    return _TensorSpec(
        storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride)
    )


def _rebuild_tensor_v2(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_grad_hooks_metadata: Any,
) -> _TensorSpec:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``; requires_grad, hooks, metadata are moot."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: _TensorSpec, *_grad_hooks: Any) -> _TensorSpec:
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is just its tensor here."""
    return data


_STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}

_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{
        ("torch", name): _StorageType(name, np.dtype(code))
        for name, code in _STORAGE_DTYPES.items()
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that maps the allowed torch globals to stand-ins and refuses all others."""

    def __init__(self, file: io.BufferedIOBase, storage_dtypes: dict[str, np.dtype]) -> None:
        super().__init__(file)
        self._storage_dtypes = storage_dtypes

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: a torch state dict of tensors "
                "never needs it (the file may be malicious, or not a plain state dict)"
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        known = self._storage_dtypes.setdefault(key, storage_type.dtype)
        if known != storage_type.dtype:
            raise pickle.UnpicklingError(
                f"storage {key} used as both {known} and {storage_type.dtype}"
            )
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _StorageRef(key, storage_type.dtype)
        _view_key, view_offset, view_size = view
        return _StorageRef(key, storage_type.dtype, int(view_offset), int(view_size))


def _materialise(spec: _TensorSpec, storages: dict[str, np.ndarray]) -> np.ndarray:
    """Copy a tensor out of its storage, checking bounds first (as_strided would not)."""
    base = storages[spec.storage.key]
    if spec.storage.view_size is not None:
        base = base[spec.storage.view_offset : spec.storage.view_offset + spec.storage.view_size]
    if (
        len(spec.size) != len(spec.stride)
        or min((*spec.size, *spec.stride, spec.offset), default=0) < 0
    ):
        raise pickle.UnpicklingError(f"bad tensor geometry {spec}")
    if math.prod(spec.size) == 0:
        return np.empty(spec.size, dtype=base.dtype)
    last = spec.offset + sum((n - 1) * s for n, s in zip(spec.size, spec.stride))
    if last >= base.size:
        raise pickle.UnpicklingError(f"tensor reaches element {last} of a storage of {base.size}")
    strides = tuple(s * base.itemsize for s in spec.stride)
    return np.lib.stride_tricks.as_strided(base[spec.offset :], spec.size, strides).copy()


def _to_state_dict(obj: Any, storages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Turn the unpickled mapping of tensor specs into name -> numpy array."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a state dict (a mapping), got {type(obj).__name__}")
    result = {}
    for name, value in obj.items():
        if not isinstance(value, _TensorSpec):
            raise ValueError(f"state dict entry {name!r} is a {type(value).__name__}, not a tensor")
        result[str(name)] = _materialise(value, storages)
    return result


def _load_legacy(data: bytes) -> dict[str, np.ndarray]:
    """Five pickles, then each listed storage as an int64 element count and its raw bytes."""
    stream = io.BytesIO(data)  # no peek(): each pickle consumes exactly its own bytes
    dtypes: dict[str, np.dtype] = {}

    def next_pickle() -> Any:
        return _RestrictedUnpickler(stream, dtypes).load()

    if next_pickle() != LEGACY_MAGIC_NUMBER:
        raise ValueError("not a legacy torch file: wrong magic number")
    protocol = next_pickle()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"unsupported legacy torch protocol {protocol!r}")
    sys_info = next_pickle()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise ValueError("only little-endian torch files are supported")
    obj = next_pickle()
    keys = next_pickle()
    storages = {}
    for key in keys:
        key = str(key)
        if key not in dtypes:
            raise pickle.UnpicklingError(f"storage {key} listed but never referenced")
        (count,) = struct.unpack("<q", stream.read(8))
        dtype = dtypes[key]
        start = stream.tell()
        if count < 0 or start + count * dtype.itemsize > len(data):
            raise ValueError(f"storage {key} of {count} elements runs past the end of the file")
        storages[key] = np.frombuffer(data, dtype=dtype, count=count, offset=start)
        stream.seek(start + count * dtype.itemsize)
    return _to_state_dict(obj, storages)


def _load_zip(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``<archive>/data.pkl`` plus one raw ``<archive>/data/<key>`` member per storage."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"expected one <archive>/data.pkl in {path}, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        if prefix + "byteorder" in names and archive.read(prefix + "byteorder") != b"little":
            raise ValueError("only little-endian torch files are supported")
        dtypes: dict[str, np.dtype] = {}
        obj = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), dtypes).load()
        storages = {
            key: np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
            for key, dtype in dtypes.items()
        }
    return _to_state_dict(obj, storages)


def load_torch_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a torch state dict (legacy or zip format) as ``{name: numpy array}``.

    Only globals needed to describe tensors are honoured; any other global in the pickle
    raises :class:`UnsafePickleError` before it can be called. Arrays are fresh copies
    (C-contiguous, little-endian), with each tensor's storage offset, size and stride applied.
    """
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as f:
        return _load_legacy(f.read())
