"""``code24ctl unbind``: placeholder until issue #4 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def unbind(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Delete workers from the environment's dispatch namespace."""
    raise UsageError("`code24ctl unbind` is not built yet (issue #4)")
