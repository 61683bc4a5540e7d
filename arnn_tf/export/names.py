"""What the programs and signatures of an export are called.

Names are checked before anything is built: a clash found after tracing every signature
would waste the trace and leave a half-written staging folder to clean up.
"""

from __future__ import annotations

import re
from typing import Sequence

from arnn_tf.export.errors import ExportError
from arnn_tf.programs import SavedProgram
from arnn_tf.tasks import short_task_name

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


def signature_names(names: Sequence[str], programs: Sequence[SavedProgram]) -> list[str]:
    """The signatures an export of ``programs`` called ``names`` has, in order: a pixel and a
    bytes signature per image program and part, one string signature per text program."""
    signatures = []
    for name, program in zip(names, programs):
        if program.input_state is not None:  # text: one signature taking strings
            signatures.append(name)
            continue
        if program.members:  # a mixed program: each part on its own input
            for member in program.members:
                base = part_signature_name(name, member.name)
                signatures += [base] if member.input_state else [base, f"{base}_bytes"]
            continue
        for base in (name, *(part_signature_name(name, part.name) for part in program.parts)):
            signatures += [base, f"{base}_bytes"]
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
