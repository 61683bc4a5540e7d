"""One record format for task predictions, shared by `arnn predict` and `arnn query`."""

from __future__ import annotations

import json
from typing import Any, Sequence


def prediction_record(
    image: str,
    class_id: int,
    class_name: str,
    probabilities: Sequence[float],
    input_kind: str = "image",
) -> dict[str, Any]:
    """What a user gets for one input (an image's path, or with ``input_kind`` "text" the
    text itself): the class and every task class's probability."""
    return {
        input_kind: str(image),
        "class_id": int(class_id),
        "class_name": str(class_name),
        "probabilities": [round(float(p), 6) for p in probabilities],
    }


def print_predictions(records: Sequence[dict[str, Any]], as_json: bool) -> None:
    """A JSON list, or one "image: class (probability)" line per input (a text quoted)."""
    if as_json:
        print(json.dumps(list(records), indent=2))
        return
    for r in records:
        source = r["image"] if "image" in r else json.dumps(r["text"], ensure_ascii=False)
        print(f"{source}: {r['class_name']} ({r['probabilities'][r['class_id']]:.3f})")
