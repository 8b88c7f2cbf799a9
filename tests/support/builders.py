"""Builders that let a test read as the screen does: tables and command lines.

A borderless table printed by the CLI is compared word by word (column widths depend on the
terminal): :func:`rows_of` splits what was printed, :func:`words` splits what a test expects,
written one line per row as it reads on screen. :func:`argv` writes a command line the way it
is typed. :func:`timeframe`, :func:`log_filter` and :func:`any_of` write the parts of a Workers
Logs query the way the SDK's ``telemetry.query`` takes them.
"""

from __future__ import annotations

from typing import Any


def rows_of(text: str) -> list[list[str]]:
    """The printed lines of ``text``, each split into its words."""
    return [line.split() for line in text.splitlines()]


def words(*lines: str) -> list[list[str]]:
    """Expected rows, each given as the line reads: ``words("alias status", "brand bound")``."""
    return [line.split() for line in lines]


def argv(line: str) -> list[str]:
    """A command line as typed: ``argv("probe --env local --json")`` (split on spaces, no
    quoting, so no argument may hold one)."""
    return line.split()


def timeframe(start_ms: int, length_ms: int) -> dict[str, int]:
    """A Workers Logs timeframe: ``{"from": start_ms, "to": start_ms + length_ms}``."""
    return {"from": start_ms, "to": start_ms + length_ms}


def log_filter(
    key: str, operation: str, value: str | None = None, *, kind: str = "string"
) -> dict[str, Any]:
    """One Workers Logs filter: ``log_filter("$metadata.service", "in", "a,b")`` (``kind`` is
    the filter's ``type``; no ``value`` for an operation like ``exists``)."""
    made: dict[str, Any] = {"key": key, "operation": operation, "type": kind}
    if value is not None:
        made["value"] = value
    return made


def any_of(*filters: dict[str, Any]) -> dict[str, Any]:
    """A group of Workers Logs filters of which one must hold (``filterCombination: or``)."""
    return {"kind": "group", "filterCombination": "or", "filters": list(filters)}
