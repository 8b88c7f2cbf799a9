"""``code24ctl serve``: placeholder until issue #3 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def serve(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Run the dispatch logic locally (--demo: with built-in sample workers)."""
    raise UsageError("`code24ctl serve` is not built yet (issue #3)")
