"""Every use of a Typer or click name that is not public API, in one place.

Typer 0.26 vendored click as ``typer._click``: from then on the exceptions Typer's parser
raises and the current-context stack are ``typer._click``'s, not the installed ``click``'s
(uvicorn still installs click, so ``import click`` succeeds and silently sees nothing).
Typer exports neither under a public name, so both are looked up here, in whichever module
this Typer uses.

Typer (0.2x) also prints Python type names (``<bool>``, ``<str>``) in help's type column, read
from each parameter's ``display_type_rich``; no public option turns that off, so
:func:`hide_type_name` shadows it on the parameter. Typer versions without that method print
click's metavars instead, and are left alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def _click_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"typer._click.{name}")  # typer >= 0.26
    except ModuleNotFoundError:
        return importlib.import_module(f"click.{name}")


#: The base of the usage errors Typer's parser raises (``show()``, ``exit_code``).
ClickException: type[Exception] = _click_module("exceptions").ClickException


def get_current_context() -> Any | None:
    """The click context of the command being run, or None outside one."""
    return _click_module("globals").get_current_context(silent=True)


def hide_type_name(param: Any) -> None:
    """Show no Python type name for ``param`` in help (arguments, options without a metavar)."""
    if not hasattr(param, "display_type_rich"):
        return
    if param.param_type_name == "argument" or param.metavar is None:
        param.display_type_rich = _no_type_name


def _no_type_name(ctx: Any) -> None:
    return None
