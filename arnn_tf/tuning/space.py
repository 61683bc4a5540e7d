"""The search space: which settings `arnn tune` searches, read from a JSON file users edit.

A space file (``tuning/default_space.json``, format in ``tuning/README.md``) gives each
searched setting a range, a list of values or one fixed value, so a search is changed by
editing data, not code; `Parameter` declares each one to Keras Tuner and to TensorBoard's
HParams dashboard.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import keras_tuner
from tensorboard.plugins.hparams import api as hparams_api

from arnn_tf.label_maps import parse_label_map
from arnn_tf.settings import DEFAULT_BATCH_SIZE, DEFAULT_L2, DEFAULT_LEARNING_RATE

PARAMETER_DEFAULTS: dict[str, Any] = {
    "learning_rate": DEFAULT_LEARNING_RATE,
    "l2": DEFAULT_L2,
    "label_map": "first",
    "image_size": 0,
    "batch_size": DEFAULT_BATCH_SIZE,
    "border_width": 0,
    "linf_bound": 0.0,
}
"""Every tunable setting and its value when a space file leaves it out. For image_size,
border_width and linf_bound, 0 means "off" (native size, program everywhere, no bound)."""

_PARAMETER_TYPES = {name: type(value) for name, value in PARAMETER_DEFAULTS.items()}
_ENTRY_KEYS = {"min", "max", "sampling", "step", "values", "value", "help"}


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched setting: a range (min/max), a list of values, or one fixed value."""

    name: str
    min: float | None = None
    max: float | None = None
    sampling: str = "linear"
    step: float | None = None
    values: tuple[Any, ...] | None = None
    value: Any = None

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> "Parameter":
        """Parses one entry of a space file, with errors that name the parameter."""
        if name not in PARAMETER_DEFAULTS:
            raise ValueError(f"unknown search-space parameter {name!r}; "
                             f"known: {', '.join(PARAMETER_DEFAULTS)}")
        if not isinstance(entry, dict) or set(entry) - _ENTRY_KEYS:
            raise ValueError(f"search-space entry {name!r} must be an object with keys from "
                             f"{sorted(_ENTRY_KEYS)}")
        forms = [key for key in ("min", "values", "value") if key in entry]
        if len(forms) != 1 or ("min" in entry) != ("max" in entry):
            raise ValueError(f"search-space entry {name!r} needs exactly one of min+max, values "
                             "or value")
        try:
            return cls._parse(name, _PARAMETER_TYPES[name], entry)
        except (TypeError, ValueError) as error:
            raise ValueError(f"search-space entry {name!r}: {error}") from None

    @classmethod
    def _parse(cls, name: str, kind: type, entry: dict[str, Any]) -> "Parameter":
        """The parameter an entry of one form (checked by `from_entry`) describes."""
        if "values" in entry:
            values = tuple(_cast(kind, v) for v in entry["values"])
            if not values or len(set(values)) != len(values):
                raise ValueError("values must be a non-empty list without repeats")
            return cls(name, values=values)
        if "value" in entry:
            return cls(name, value=_cast(kind, entry["value"]))
        if kind is str:
            raise ValueError("a text setting takes values or value, not a range")
        low, high = _cast(kind, entry["min"]), _cast(kind, entry["max"])
        sampling = entry.get("sampling", "linear")
        if not low < high or sampling not in ("linear", "log") or (sampling == "log" and low <= 0):
            raise ValueError("a range needs min < max, sampling 'linear' or 'log', and min > 0 "
                             "for log")
        step = None if entry.get("step") is None else _cast(kind, entry["step"])
        return cls(name, min=low, max=high, sampling=sampling, step=step)

    def declare(self, hp: keras_tuner.HyperParameters) -> Any:
        """Registers this parameter with ``hp`` and returns the trial's value."""
        if self.values is not None:
            return hp.Choice(self.name, list(self.values))
        if self.min is None:
            return hp.Fixed(self.name, self.value)
        if _PARAMETER_TYPES[self.name] is int:
            return hp.Int(self.name, int(self.min), int(self.max), step=self.step,
                          sampling=self.sampling)
        return hp.Float(self.name, float(self.min), float(self.max), step=self.step,
                        sampling=self.sampling)

    def hparams_domain(self) -> hparams_api.HParam:
        """The same parameter for TensorBoard's HParams dashboard."""
        if self.values is not None:
            domain: hparams_api.Domain = hparams_api.Discrete(list(self.values))
        elif self.min is None:
            domain = hparams_api.Discrete([self.value])
        elif _PARAMETER_TYPES[self.name] is int:
            domain = hparams_api.IntInterval(int(self.min), int(self.max))
        else:
            domain = hparams_api.RealInterval(float(self.min), float(self.max))
        return hparams_api.HParam(self.name, domain)

    def choices(self) -> tuple[Any, ...]:
        """Every value a trial can get when the parameter is not a range."""
        return self.values if self.values is not None else (self.value,)

    def to_entry(self) -> dict[str, Any]:
        """The space-file form, for recording a search's settings."""
        if self.values is not None:
            return {"values": list(self.values)}
        if self.min is None:
            return {"value": self.value}
        return {"min": self.min, "max": self.max, "sampling": self.sampling, "step": self.step}


def _cast(kind: type, value: Any) -> Any:
    """A JSON value as the parameter's type, refusing lossy conversions (1.5 as an int, 3 as
    text)."""
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"expected a whole number, got {value!r}")
    return kind(value)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """All tunable settings; those the file leaves out are fixed at `PARAMETER_DEFAULTS`."""

    parameters: tuple[Parameter, ...]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "SearchSpace":
        """Reads ``{"parameters": {name: entry}}``; other top-level keys (e.g. "about") are
        notes."""
        entries = document.get("parameters") if isinstance(document, dict) else None
        if not isinstance(entries, dict):
            raise ValueError('a search space is a JSON object with a "parameters" object')
        given = {name: Parameter.from_entry(name, entry) for name, entry in entries.items()}
        return cls(tuple(given.get(name, Parameter(name, value=default))
                         for name, default in PARAMETER_DEFAULTS.items()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SearchSpace":
        """Reads a space file (see ``tuning/README.md`` for the format)."""
        try:
            document = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"search-space file not found: {path}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"search-space file {path} is not valid JSON: {error}") from None
        return cls.from_dict(document)

    def __getitem__(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The space-file form, for recording a search's settings."""
        return {"parameters": {p.name: p.to_entry() for p in self.parameters}}

    def fit_to(self, frame_size: int, num_classes: int) -> "SearchSpace":
        """This space with image sizes larger than the backbone's frame dropped, checked
        against the task.

        One space file then serves backbones of every input size; a label map that cannot
        serve the task, or an image size no value of which fits, is an error.
        """
        image = self["image_size"]
        if image.min is not None:
            if image.min > frame_size:
                raise ValueError(f"image_size range starts above the backbone's {frame_size}-pixel "
                                 "frame")
            image = dataclasses.replace(image, max=min(image.max, frame_size))
        else:
            fitting = tuple(v for v in image.choices() if v <= frame_size)
            if not fitting:
                raise ValueError(f"no image_size in {list(image.choices())} fits the backbone's "
                                 f"{frame_size}-pixel frame")
            if image.values:
                image = dataclasses.replace(image, values=fitting)
        for spec in self["label_map"].choices():
            parse_label_map(spec, num_classes)
        return SearchSpace(tuple(image if p.name == "image_size" else p for p in self.parameters))
