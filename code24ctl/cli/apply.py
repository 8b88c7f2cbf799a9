"""``code24ctl apply``: placeholder until issue #4 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def apply(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Create the namespace, bind the workers and deploy the dispatcher, in order."""
    raise UsageError("`code24ctl apply` is not built yet (issue #4)")
