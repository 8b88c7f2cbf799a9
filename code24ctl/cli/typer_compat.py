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
import sys
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


#: What ``typer.rich_utils`` imports at its top but uses only for Markdown help (we use rich
#: markup) and for pretty tracebacks (turned off): rich.markdown (markdown-it and pygments) and
#: rich.traceback (attrs) are a third of ``--help``'s start (benchmarks/README.md, startup).
_DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


def load_rich_help() -> None:
    """Import ``typer.rich_utils`` with Markdown and Traceback loaded only if ever used.

    While it imports, each module in :data:`_DEFERRED` not yet imported is a stand-in whose
    class imports the real one when first called; the stand-ins leave ``sys.modules`` right
    after, so any later ``import rich.markdown`` is the real module. A Typer whose rich_utils
    wants more of those modules than the stand-ins hold is imported the ordinary way.
    """
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {
        name: _stand_in(name, attribute)
        for name, attribute in _DEFERRED.items()
        if name not in sys.modules
    }
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("typer.rich_utils")
    except Exception:  # whatever a stand-in made it raise: the ordinary import, below
        sys.modules.pop("typer.rich_utils", None)
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    importlib.import_module("typer.rich_utils")


class _Deferred(type):
    """A stand-in class: calling it, or reading an attribute, imports and uses the real one."""

    real_module: str

    def real(cls) -> Any:
        module = importlib.import_module(cls.real_module)
        if getattr(module, cls.__name__, None) is cls:
            # Used while the stand-in is still the module (during Typer's import).
            raise ImportError(f"{cls.real_module}.{cls.__name__} is deferred")
        return getattr(module, cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls.real(), name)


def _stand_in(module_name: str, class_name: str) -> ModuleType:
    module = ModuleType(module_name)
    setattr(module, class_name, _Deferred(class_name, (), {"real_module": module_name}))
    return module
