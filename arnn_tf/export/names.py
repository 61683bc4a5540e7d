"""What the programs and signatures of an export are called.

Names are checked before anything is built: a clash found after tracing every signature
would waste the trace and leave a half-written staging folder to clean up.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from arnn_tf.export.errors import ExportError
from arnn_tf.modalities.registry import modality
from arnn_tf.programs.parts import reader_groups
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.base import TaskPart
from arnn_tf.tasks.specs import short_task_name

SINGLE_PROGRAM_SIGNATURES = ("serving_default", "predict_bytes")
"""The extra names a one-program export answers to, so clients need no signature name."""


def sanitize_name(name: str) -> str:
    """A signature/model-friendly name: lower-case letters, digits and underscores.

    TF Serving and saved_model_cli accept these everywhere; a leading digit gets a ``p_``.
    """
    cleaned = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not cleaned:
        return "program"
    return f"p_{cleaned}" if cleaned[0].isdigit() else cleaned


def part_signature_name(program_name: str, part_name: str) -> str:
    """The pixel signature of one part of a multi-task program (``_bytes`` names its twin)."""
    return sanitize_name(f"{program_name}_{short_task_name(part_name)}")


class Answerer(NamedTuple):
    """One input an export answers for: a program, a data set joined in an older program's one
    part (``part``), or a part of a program of several (``member``: its index), with what it
    reads."""

    base: str
    modality: str
    member: int | None = None
    part: TaskPart | None = None
    readers: tuple[int, ...] = ()
    """For an answer with the task unknown, the parts (two or more, reading one form of
    input) among whose classes it answers."""


def answerers(name: str, program: SavedProgram) -> list[Answerer]:
    """What an export of ``program`` called ``name`` answers for, in signature order."""
    if len(program.parts) > 1:  # each part on its own input, then with the task unknown
        own = [
            Answerer(part_signature_name(name, part.name), part.modality, member=i)
            for i, part in enumerate(program.parts)
        ]
        groups = [group for group in reader_groups(program.parts) if len(group) > 1]
        unknown = [
            Answerer(f"{name}_any" + (f"_{k + 1}" if k else ""), own[g[0]].modality, readers=g)
            for k, g in enumerate(groups)
        ]
        return own + unknown
    parts = [
        Answerer(part_signature_name(name, joined.name), program.modality, part=joined)
        for joined in program.joined
    ]
    return [Answerer(name, program.modality), *parts]


def signature_names(names: Sequence[str], programs: Sequence[SavedProgram]) -> list[str]:
    """The signatures an export of ``programs`` called ``names`` has, in order: each
    answerer's (its modality's ``signature_suffixes``)."""
    signatures = [
        answerer.base + suffix
        for name, program in zip(names, programs)
        for answerer in answerers(name, program)
        for suffix in modality(answerer.modality).signature_suffixes
    ]
    if len(names) != 1 or names[0] not in signatures:
        return signatures
    single = (
        SINGLE_PROGRAM_SIGNATURES if f"{names[0]}_bytes" in signatures else ("serving_default",)
    )
    return list(single) + signatures


def program_names(programs: Sequence[SavedProgram], names: Sequence[str] | None) -> list[str]:
    """Explicit names (sanitized) or the programs' short task names.

    ``folder:/data/mnist`` becomes ``mnist``. Refuses duplicates and reserved names, since
    two signatures of one name would silently shadow each other.
    """
    if names is not None and len(names) != len(programs):
        raise ExportError(f"{len(names)} names given for {len(programs)} programs")
    defaults = [short_task_name(p.task_name) for p in programs]
    chosen = [sanitize_name(n) for n in (names if names is not None else defaults)]
    if len(set(chosen)) != len(chosen):
        raise ExportError(
            f"program names must differ, got {chosen}; give each program its own name"
        )
    signatures = signature_names(chosen, programs)
    reserved = [n for n in chosen if n in SINGLE_PROGRAM_SIGNATURES]
    if reserved or len(set(signatures)) != len(signatures):
        raise ExportError(
            f"program names {chosen} clash with each other's signatures "
            f"(parts' included) or with {SINGLE_PROGRAM_SIGNATURES}; "
            "choose other names"
        )
    return chosen
