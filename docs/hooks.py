"""MkDocs hooks: before each build, the command-line reference is written from `arnn`'s parser
and the pictures the pages show are copied from where the project keeps them."""

import shutil
from pathlib import Path

from arnn_tf.cli.reference import cli_reference

PICTURES = {
    "counting-program.png": "saved_programs/counting-efficientnet_lite0/program.png",
    "capacity-curve.png": "benchmarks/results/capacity_curve.png",
}
"""Generated pages' pictures (docs/images/, not committed) and their sources."""


def on_pre_build(config, **kwargs):
    docs = Path(config["docs_dir"])
    _write_if_changed(docs / "reference" / "cli.md", cli_reference())
    for name, source in PICTURES.items():
        target = docs / "images" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(docs.parent / source, target)


def _write_if_changed(path, text):
    """Writes ``text`` to ``path`` unless it holds it already (mkdocs serve watches files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
