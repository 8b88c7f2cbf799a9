"""``code24ctl secret``: placeholder until issue #4 lands."""

from __future__ import annotations

import typer

from code24ctl.errors import UsageError

app = typer.Typer(help="Set secrets on workers in the namespace.", no_args_is_help=True)


@app.command("put")
def put(alias: str, name: str) -> None:
    """Read a secret value from stdin and set it on ALIAS in the namespace."""
    raise UsageError("`code24ctl secret put` is not built yet (issue #4)")
