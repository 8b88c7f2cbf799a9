"""``code24ctl deploy``: placeholder until issue #4 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def deploy(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Upload the dispatcher Worker with its bindings and make the zone routes match."""
    raise UsageError("`code24ctl deploy` is not built yet (issue #4)")
