"""Fails when a function in the given folders is longer than the limit (default 60 lines).

Ruff checks line length; no ruff rule counts a function's lines, so this does, with `ast`:
from the ``def`` line to the function's last line, docstring included.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 60


def long_functions(root: Path, limit: int = LIMIT) -> list[str]:
    """``path:line: name is N lines`` for every function in ``root`` over ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path}:{node.lineno}: {node.name} is {length} lines (> {limit})")
    return found


if __name__ == "__main__":
    problems = [line for folder in sys.argv[1:] or ["arnn_tf"] for line in long_functions(Path(folder))]
    print("\n".join(problems) or "no function over the limit")
    sys.exit(1 if problems else 0)
