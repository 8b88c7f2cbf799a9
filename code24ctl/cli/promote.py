"""``code24ctl promote``: the dispatcher's newest version at 100%."""

from __future__ import annotations

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.cli.release_view import finish_release


def promote(
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deploy the dispatcher's newest version at 100% (finishes a gradual rollout or canary)."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.release import promote as run_promote
    from code24ctl.ops.release import require_versions

    resolved = load(config, env)
    require_versions(resolved)
    session = cloudflare_session(resolved)
    report = run_promote(session, resolved)
    finish_release(report, json_output)
