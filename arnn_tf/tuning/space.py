"""The search space: which recipe fields `arnn tune` searches, read from a JSON file users edit.

A space file (``tuning/default_space.json``, format in ``tuning/README.md``) gives each
searched `arnn_tf.recipes.Recipe` field a range, a list of values or one fixed value, so a
search is changed by editing data, not code; every other field keeps the base recipe's value.
`Parameter` declares each one to Keras Tuner and to TensorBoard's HParams dashboard, whose
values must be numbers, text or booleans: a field's "off" value (None) is 0 for a number and
"none" for text there, and augmentations are one comma-separated text.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterator

import keras_tuner
from tensorboard.plugins.hparams import api as hparams_api

from arnn_tf.recipes import BLACK_BOX_FIELDS, FIELDS, Recipe

FIXED_FIELDS = ("name", "task", "backbone", "weights", "steps", "epochs", "seed", "trainer")
FIXED_FIELDS += BLACK_BOX_FIELDS
"""Recipe fields a search never varies: all trials share the base recipe's task, backbone and
seed, the search decides how long each trial trains, and trials train white-box (so the
black-box estimator's fields have nothing to act on)."""
SEARCHABLE_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in FIXED_FIELDS)
OFF_TEXT = "none"
"""A text field's (and the augmentation list's) "off" value in the space."""

_ENTRY_KEYS = {"min", "max", "sampling", "step", "values", "value", "help"}


def _field_kinds() -> dict[str, tuple[type, bool]]:
    """Each searchable field's value type and whether it may be None, from `Recipe`'s hints."""
    kinds = {}
    hints = typing.get_type_hints(Recipe)
    for name in SEARCHABLE_FIELDS:
        hint = hints[name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = typing.get_args(hint) if union else (hint,)
        kind = next(option for option in options if option is not type(None))
        kinds[name] = (typing.get_origin(kind) or kind, type(None) in options)
    return kinds


_KINDS = _field_kinds()


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched recipe field: a range (min/max), a list of values, or one fixed value.

    Values are held as Keras Tuner sees them (see the module's note); `recipe_value` gives
    the recipe's.
    """

    name: str
    min: float | None = None
    max: float | None = None
    sampling: str = "linear"
    step: float | None = None
    values: tuple[Any, ...] | None = None
    value: Any = None

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> "Parameter":
        """Parses one entry of a space file, with errors that name the field."""
        if name not in FIELDS:
            raise ValueError(
                f"search-space entry {name!r} is not a recipe field; the recipe's "
                f"fields: {', '.join(FIELDS)}"
            )
        if name in FIXED_FIELDS:
            raise ValueError(
                f"recipe field {name!r} is the same for every trial (the base "
                "recipe's, or the search's trial length), so it cannot be searched; "
                f"searchable fields: {', '.join(SEARCHABLE_FIELDS)}"
            )
        if not isinstance(entry, dict) or set(entry) - _ENTRY_KEYS:
            raise ValueError(
                f"search-space entry {name!r} must be an object with keys from "
                f"{sorted(_ENTRY_KEYS)}"
            )
        forms = [key for key in ("min", "values", "value") if key in entry]
        if len(forms) != 1 or ("min" in entry) != ("max" in entry):
            raise ValueError(
                f"search-space entry {name!r} needs exactly one of min+max, values or value"
            )
        try:
            return cls._parse(name, entry)
        except (TypeError, ValueError) as error:
            raise ValueError(f"search-space entry {name!r}: {error}") from None

    @classmethod
    def _parse(cls, name: str, entry: dict[str, Any]) -> "Parameter":
        """The parameter an entry of one form (checked by `from_entry`) describes."""
        if "values" in entry:
            if not isinstance(entry["values"], list):
                raise ValueError("values must be a list")
            values = tuple(_cast(name, v) for v in entry["values"])
            if not values or len(set(values)) != len(values):
                raise ValueError("values must be a non-empty list without repeats")
            return cls(name, values=values)
        if "value" in entry:
            return cls(name, value=_cast(name, entry["value"]))
        if _KINDS[name][0] not in (int, float):
            raise ValueError("only a number takes a range; give values or value")
        low, high = _cast(name, entry["min"]), _cast(name, entry["max"])
        sampling = entry.get("sampling", "linear")
        if not low < high or sampling not in ("linear", "log") or (sampling == "log" and low <= 0):
            raise ValueError(
                "a range needs min < max, sampling 'linear' or 'log', and min > 0 for log"
            )
        step = None if entry.get("step") is None else _cast(name, entry["step"])
        return cls(name, min=low, max=high, sampling=sampling, step=step)

    def declare(self, hp: keras_tuner.HyperParameters) -> Any:
        """Registers this parameter with ``hp`` and returns the trial's value."""
        if self.values is not None:
            return hp.Choice(self.name, list(self.values))
        if self.min is None:
            return hp.Fixed(self.name, self.value)
        if _KINDS[self.name][0] is int:
            return hp.Int(
                self.name, int(self.min), int(self.max), step=self.step, sampling=self.sampling
            )
        return hp.Float(
            self.name, float(self.min), float(self.max), step=self.step, sampling=self.sampling
        )

    def hparams_domain(self) -> hparams_api.HParam:
        """The same parameter for TensorBoard's HParams dashboard."""
        if self.min is None:
            domain: hparams_api.Domain = hparams_api.Discrete(list(self.choices()))
        elif _KINDS[self.name][0] is int:
            domain = hparams_api.IntInterval(int(self.min), int(self.max))
        else:
            domain = hparams_api.RealInterval(float(self.min), float(self.max))
        return hparams_api.HParam(self.name, domain)

    def choices(self) -> tuple[Any, ...]:
        """Every value a trial can get when the parameter is not a range."""
        return self.values if self.values is not None else (self.value,)

    def extremes(self) -> tuple[Any, ...]:
        """The values that bound what a trial can get: a range's ends, or every choice."""
        return (self.min, self.max) if self.min is not None else self.choices()

    def to_entry(self) -> dict[str, Any]:
        """The space-file form, for recording a search's settings."""
        if self.values is not None:
            return {"values": list(self.values)}
        if self.min is None:
            return {"value": self.value}
        return {"min": self.min, "max": self.max, "sampling": self.sampling, "step": self.step}


def _cast(name: str, value: Any) -> Any:
    """A JSON value as field ``name``'s Keras Tuner value, refusing lossy conversions (1.5 as
    an integer, 3 as text)."""
    kind, optional = _KINDS[name]
    if value is None:
        if not optional:
            raise ValueError("null: this field is never off")
        return OFF_TEXT if kind in (str, tuple) else kind(0)
    if kind is tuple:
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"expected a list of names or comma-separated text, got {value!r}")
        return ",".join(n.strip() for n in names if n.strip() and n.strip() != OFF_TEXT) or OFF_TEXT
    if kind in (str, bool):
        if not isinstance(value, kind):
            wanted = "text" if kind is str else "true or false"
            raise ValueError(f"expected {wanted}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"expected a whole number, got {value!r}")
    return kind(value)


def recipe_value(name: str, value: Any) -> Any:
    """Field ``name``'s recipe value for the Keras Tuner value ``value`` (what `_cast` made)."""
    kind, optional = _KINDS[name]
    if kind is tuple:
        return () if value == OFF_TEXT else tuple(value.split(","))
    if optional and value == (OFF_TEXT if kind is str else 0):
        return None
    return value


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The searched recipe fields; the others keep the base recipe's values."""

    parameters: tuple[Parameter, ...]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "SearchSpace":
        """Reads ``{"parameters": {field: entry}}``; other top-level keys (e.g. "about") are
        notes."""
        entries = document.get("parameters") if isinstance(document, dict) else None
        if not isinstance(entries, dict):
            raise ValueError('a search space is a JSON object with a "parameters" object')
        return cls(tuple(Parameter.from_entry(name, entry) for name, entry in entries.items()))

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

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.parameters)

    def to_dict(self) -> dict[str, Any]:
        """The space-file form, for recording a search's settings."""
        return {"parameters": {p.name: p.to_entry() for p in self.parameters}}

    def declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """Registers every parameter with ``hp``; the trial's Keras Tuner values."""
        return {p.name: p.declare(hp) for p in self.parameters}

    def recipe(self, base: Recipe, values: dict[str, Any]) -> Recipe:
        """``base`` with the space's fields set from a trial's Keras Tuner ``values``."""
        return base.replace(
            **{p.name: recipe_value(p.name, values[p.name]) for p in self.parameters}
        )

    def fit_to(self, frame_size: int) -> "SearchSpace":
        """This space with image sizes larger than the backbone's frame dropped.

        One space file then serves backbones of every input size; an image size no value of
        which fits is an error.
        """
        if "image_size" not in self:
            return self
        image = self["image_size"]
        if image.min is not None:
            if image.min > frame_size:
                raise ValueError(
                    f"image_size range starts above the backbone's {frame_size}-pixel frame"
                )
            image = dataclasses.replace(image, max=min(image.max, frame_size))
        else:
            fitting = tuple(v for v in image.choices() if v <= frame_size)
            if not fitting:
                raise ValueError(
                    f"no image_size in {list(image.choices())} fits the backbone's "
                    f"{frame_size}-pixel frame"
                )
            if image.values:
                image = dataclasses.replace(image, values=fitting)
        return SearchSpace(tuple(image if p.name == "image_size" else p for p in self.parameters))

    def check(self, base: Recipe, check_trial: Callable[[Recipe], None] | None = None) -> None:
        """Raises ValueError unless every corner of the space (each range's ends, each choice,
        in every combination) on ``base`` is a valid recipe that ``check_trial`` accepts.

        Fields can depend on each other (warmup needs the cosine schedule), so a value that
        is fine alone can make a bad trial with another; this finds it before any trial runs.
        """
        for values in self._corners():
            try:
                recipe = self.recipe(base, values)
                if check_trial is not None:
                    check_trial(recipe)
            except ValueError as error:
                shown = ", ".join(f"{name} {value!r}" for name, value in values.items())
                raise ValueError(
                    f"the search space holds trials no run can use: "
                    f"{shown or 'the base recipe'}: {error}"
                ) from None

    def _corners(self) -> Iterator[dict[str, Any]]:
        """Every combination of the parameters' `Parameter.extremes`."""
        names = [p.name for p in self.parameters]
        for combination in itertools.product(*(p.extremes() for p in self.parameters)):
            yield dict(zip(names, combination))
