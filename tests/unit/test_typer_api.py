"""Typer and click through their public API only: the one exception is cli/typer_compat.py."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.cli import REPO_ROOT

SHIM = Path("code24ctl/cli/typer_compat.py")


def _private_uses(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names = []
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            # typer._click, click._compat, ... spelled as attributes
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("typer", "click"):
                found.append(f"{base.id}.{node.attr}")
            continue
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] in ("typer", "click") and any(p.startswith("_") for p in parts):
                found.append(module)
            elif parts[0] in ("typer", "click"):
                found += [f"{module}.{n}" for n in names if n.startswith("_")]
    return found


def test_no_private_typer_or_click_name_outside_the_shim() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): uses
        for path in sorted((REPO_ROOT / "code24ctl").rglob("*.py"))
        if path.relative_to(REPO_ROOT) != SHIM and (uses := _private_uses(path))
    }
    assert offenders == {}


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import typer\nfrom typer._click import core\nfrom typer.core import _TyperParameter\n"
        "x = typer._click\n",
        encoding="utf-8",
    )
    assert _private_uses(sample) == ["typer._click", "typer.core._TyperParameter", "typer._click"]
