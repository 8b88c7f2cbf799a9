"""``code24ctl workers``: placeholder until issue #4 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def workers(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Compare configured aliases with what the namespace holds."""
    raise UsageError("`code24ctl workers` is not built yet (issue #4)")
