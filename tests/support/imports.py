"""Which modules a set of Python files imports, read from their syntax (nothing is run)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def imports_of(files: Iterable[Path]) -> dict[str, set[str]]:
    """Top-level modules imported by absolute imports, outside `if TYPE_CHECKING:` blocks."""
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path))
    return found
