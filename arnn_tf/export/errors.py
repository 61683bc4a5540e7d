"""The one error an export raises for programs it cannot write."""

from __future__ import annotations


class ExportError(ValueError):
    """The programs cannot be exported together (names, backbones, versions)."""
