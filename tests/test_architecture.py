"""The layout is the design: docs/architecture.md matches the tree, imports point down.

``docs/architecture.md`` names every module of the package and what each package may import;
the import contracts in ``pyproject.toml`` (import-linter) enforce the second half. A module
over ``MODULE_LINES`` lines or a function whose body (docstring left out) is over
``FUNCTION_LINES`` lines must be named in the document's "Large modules and functions"
section, which says why it stays whole.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "mdsessions"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
MODULE_LINES = 800
FUNCTION_LINES = 80


def modules() -> set[str]:
    return {p.relative_to(REPO_ROOT).as_posix() for p in PACKAGE.rglob("*.py")}


def section(title: str) -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/architecture.md has no section '## {title}'"
    return match.group(1)


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring (decorators and signature included)."""
    total = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        total -= (first.end_lineno or first.lineno) - first.lineno + 1
    return total


def large() -> tuple[dict[str, int], dict[str, int]]:
    big_modules: dict[str, int] = {}
    big_functions: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        count = len(text.splitlines())
        if count > MODULE_LINES:
            big_modules[rel] = count
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = body_lines(node)
                if size > FUNCTION_LINES:
                    big_functions[f"{rel}:{node.name}"] = size
    return big_modules, big_functions


def test_the_module_map_names_every_module_and_no_other() -> None:
    text = section("Module map")
    named = set(re.findall(r"`(mdsessions/[A-Za-z0-9_/]+\.py)`", text))
    assert named - modules() == set(), "docs/architecture.md names modules that do not exist"
    assert modules() - named == set(), "modules missing from docs/architecture.md's module map"


def test_large_modules_and_functions_say_why_they_stay_whole() -> None:
    text = section("Large modules and functions")
    big_modules, big_functions = large()
    missing = [
        f"{name} ({lines} lines)"
        for name, lines in {**big_modules, **big_functions}.items()
        if f"`{name}`" not in text
    ]
    assert not missing, "not explained in docs/architecture.md: " + ", ".join(missing)
    listed = set(re.findall(r"`(mdsessions/[A-Za-z0-9_/]+\.py(?::\w+)?)`", text))
    stale = listed - set(big_modules) - set(big_functions)
    assert not stale, f"listed as large but no longer over the limit: {sorted(stale)}"


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_an_upward_import_breaks_a_contract(tmp_path: Path) -> None:
    """The contracts catch a violation: a copy of the package where models imports store."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "mdsessions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    schema = copy / "mdsessions" / "models" / "schema.py"
    schema.write_text(
        schema.read_text(encoding="utf-8") + "\nfrom mdsessions.store import store as _up\n",
        encoding="utf-8",
    )
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0
    assert "mdsessions.models.schema -> mdsessions.store.store" in proc.stdout
