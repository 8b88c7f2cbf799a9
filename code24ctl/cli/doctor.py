"""``code24ctl doctor``: placeholder until issue #4 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def doctor(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Check token, account, namespace, workers, dispatcher, routes, then probe."""
    raise UsageError("`code24ctl doctor` is not built yet (issue #4)")
