"""``code24ctl bind``: placeholder until issue #4 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def bind(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Put the configured workers into the environment's dispatch namespace."""
    raise UsageError("`code24ctl bind` is not built yet (issue #4)")
