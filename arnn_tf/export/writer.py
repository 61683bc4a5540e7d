"""Writing the SavedModel: version folders, the variables tracked, the atomic rename.

The version is written to a hidden temporary folder next to its final place and renamed into
it, so the server's version poller never sees half an export.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from arnn_tf.export.errors import ExportError
from arnn_tf.export.names import program_names
from arnn_tf.modalities.base import Signature
from arnn_tf.export.signatures import build_signatures
from arnn_tf.export.warmup import WARMUP_FILE, write_warmup
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.settings import DEFAULT_MAX_PIXELS  # about 50 MB of RGB pixels


def next_version(base_dir: str | os.PathLike[str]) -> int:
    """One more than the largest numeric version folder in ``base_dir`` (1 when there is none)."""
    base = Path(base_dir)
    versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_programs(
    programs: Sequence[SavedProgram | str | os.PathLike[str]],
    base_dir: str | os.PathLike[str],
    version: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    names: Sequence[str] | None = None,
) -> Path:
    """Writes ``programs`` (saved programs or their folders) as version ``version`` of ``base_dir``.

    Returns the version folder. Raises ExportError when the programs are on different
    backbones, names collide, or the version already exists; all checks run before the
    (slow) tracing, and nothing is written when one fails.
    """
    loaded = [p if isinstance(p, SavedProgram) else SavedProgram.load(p) for p in programs]
    if not loaded:
        raise ExportError("no programs to export")
    if max_pixels < 1:
        raise ExportError(f"max_pixels must be positive, got {max_pixels}")
    chosen = program_names(loaded, names)
    _check_same_backbone(loaded, chosen)
    base = Path(base_dir)
    target = version_folder(base, version)

    backbone = loaded[0].build_backbone()
    models = {name: saved.build_model(backbone) for name, saved in zip(chosen, loaded)}
    signatures = build_signatures(models, dict(zip(chosen, loaded)), max_pixels)
    module = _tracked_variables(backbone, models)
    module.signature_resources = [r for s in signatures.values() for r in s.resources]
    write_version(module, signatures, target)
    return target


def version_folder(base: Path, version: int | None) -> Path:
    """``base/version`` (the next free version by default), refused if it exists already."""
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise ExportError(f"versions are positive integers, got {version}")
    target = base / str(version)
    if target.exists():
        raise ExportError(
            f"{target} already exists; TF Serving versions are immutable, pick "
            f"another version number (the next free one is {next_version(base)})"
        )
    return target


def _check_same_backbone(programs: Sequence[SavedProgram], names: Sequence[str]) -> None:
    """Refuses programs that cannot share one copy of the backbone and its input size."""
    first = programs[0].backbone
    for name, program in zip(names, programs):
        if (program.backbone.name, program.backbone.fingerprint) != (first.name, first.fingerprint):
            raise ExportError(
                f"programs in one export share one backbone, but {names[0]!r} is on "
                f"{first.name!r} (fingerprint {first.fingerprint[:12]}) and {name!r} on "
                f"{program.backbone.name!r} (fingerprint {program.backbone.fingerprint[:12]}); "
                "export them separately"
            )
        if program.frame_size != programs[0].frame_size:
            raise ExportError(
                f"programs in one export share one backbone input, but {names[0]!r} is "
                f"{programs[0].frame_size}x{programs[0].frame_size} and {name!r} "
                f"{program.frame_size}x{program.frame_size}; export them separately"
            )


def _tracked_variables(backbone: keras.Model, models: dict[str, ReprogrammedModel]) -> tf.Module:
    """A module tracking the variables themselves, not the Keras models.

    Each variable is then saved exactly once, however many programs and parts use it.
    """
    module = tf.Module(name="arnn_export")
    module.backbone_variables = [v.value for v in backbone.variables]
    module.program_variables = [
        v.value
        for m in models.values()
        for layer in (m.program, *m.label_maps, *m.encoders)
        for v in layer.weights
    ]
    return module


def write_version(module: tf.Module, signatures: dict[str, Signature], target: Path) -> None:
    """Saves ``module`` with ``signatures`` and the warm-up file, then renames it to ``target``."""
    base = target.parent
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=base, prefix=f".{target.name}.tmp-"))
    requests = {name: {s.input_name: s.example} for name, s in signatures.items()}
    try:
        tf.saved_model.save(
            module, str(staging), signatures={name: s.function for name, s in signatures.items()}
        )
        write_warmup(staging / "assets.extra" / WARMUP_FILE, base.name or "arnn", requests)
        os.chmod(staging, 0o755)
        os.rename(staging, target)
    except BaseException:
        tf.io.gfile.rmtree(str(staging))
        raise
