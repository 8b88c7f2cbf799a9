"""Builders that let a test read as the screen does: tables and command lines.

A borderless table printed by the CLI is compared word by word (column widths depend on the
terminal): :func:`rows_of` splits what was printed, :func:`words` splits what a test expects,
written one line per row as it reads on screen. :func:`argv` writes a command line the way it
is typed.
"""

from __future__ import annotations


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
