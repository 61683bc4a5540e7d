"""The `arnn` commands, one module each.

Every module has ``add_parser(commands)``, which adds the command's sub-parser and imports
nothing heavy (so `arnn --help` and `arnn CMD --help` answer without starting TensorFlow),
and ``run(args)``, which imports the library where it is called and is the command. Options
several commands share are in `options`; `saved` loads a saved program and its task.
"""

from __future__ import annotations

from types import ModuleType

from arnn_tf.cli.commands import (
    backbones,
    bench,
    classify,
    evaluate,
    export,
    predict,
    query,
    show,
    train,
    tune,
)

COMMANDS: dict[str, ModuleType] = {
    "train": train,
    "evaluate": evaluate,
    "predict": predict,
    "show": show,
    "classify": classify,
    "backbones": backbones,
    "bench": bench,
    "export": export,
    "query": query,
    "tune": tune,
}
"""Each command's name and module, in the order `arnn --help` lists them."""
