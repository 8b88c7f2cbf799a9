"""One run of ``code24ctl``: its global options and what it has printed, on the click context.

The root group puts an :class:`Invocation` on the context (``ctx.obj``) before parsing; the
global options (``-c``, ``-e``, ``--json``, ``-v``, ``--no-color``) land on it whether they
come before the command (the root callback) or after it (each command's own option, which
falls back to the value here), so both spellings reach the same place. It also carries the
clock every Cloudflare session of this run waits on: tests pass
``obj=Invocation(clock=FakeClock())`` to the runner so retries cost no real time. Nothing here
outlives the run: the next one gets a fresh object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from code24ctl.cloudflare.pacing import Clock


@dataclass
class Invocation:
    """What the user gave as global options, wherever on the command line, for one run."""

    config: str | None = None
    env: str | None = None
    json: bool = False
    verbose: int = 0
    no_color: bool = False
    # Whether a --json document was already printed: a failure after it prints no second one.
    emitted: bool = False
    #: The clock of every Cloudflare session this run builds (None: the system clock).
    clock: Clock | None = None


def invocation() -> Invocation:
    """The :class:`Invocation` of the command running now.

    Outside a command (a core function called directly, shell completion) there is none: a
    fresh default one is returned, so options read their defaults and writes go nowhere.
    """
    context = _current_context()
    if context is not None:
        found = context.find_object(Invocation)
        if isinstance(found, Invocation):
            return found
    return Invocation()


def land_config(value: str | None) -> str | None:
    """``-c`` after the command: remembered for the run; absent, the one given before it."""
    run = invocation()
    if value is None:
        return run.config
    run.config = value
    return value


def land_env(value: str | None) -> str | None:
    """``-e`` after the command: remembered for the run; absent, the one given before it."""
    run = invocation()
    if value is None:
        return run.env
    run.env = value
    return value


def land_json(value: bool) -> bool:
    """``--json`` after the command, or before it: either asks for JSON."""
    run = invocation()
    if value:
        run.json = True
    return run.json


def of_context(ctx: Any) -> Invocation:
    """The :class:`Invocation` on ``ctx`` (the root group made one; a bare context gets one)."""
    found = ctx.find_object(Invocation)
    if isinstance(found, Invocation):
        return found
    made: Invocation = ctx.ensure_object(Invocation)
    return made


def _current_context() -> Any:
    # Typer hands the click context it runs only to functions that declare it; this is the
    # one place that asks for the current one (through the shim: no public API offers it).
    from code24ctl.cli.typer_compat import get_current_context

    return get_current_context()
