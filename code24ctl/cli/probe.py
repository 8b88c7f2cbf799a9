"""``code24ctl probe``: placeholder until issue #5 lands."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.errors import UsageError


def probe(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Send every route's probe request and say which answer JSON."""
    raise UsageError("`code24ctl probe` is not built yet (issue #5)")
