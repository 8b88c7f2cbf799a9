"""``code24ctl whoami``: which token this is and which account it reaches (wrangler's habit)."""

from __future__ import annotations

from code24ctl.cli import output
from code24ctl.cli.doctor import print_checks
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.errors import CheckFailed


def whoami(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Show the API token (user or account-owned, active or not) and the account it reaches.

    Read-only: the doctor's first two checks. Exit 1 if the token or the account fails.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.whoami import run_whoami

    resolved = load(config, env)
    session = cloudflare_session(resolved)
    report = run_whoami(session, resolved)
    if json_output:
        from code24ctl.cli.schemas import WhoamiDocument

        output.emit(
            WhoamiDocument(
                environment=report.environment,
                namespace=resolved.namespace(),
                account_id=session.account_id,
                ok=report.ok,
                checks=report.checks,
            )
        )
    else:
        print_checks(report.checks)
    if not report.ok:
        failed = [c.name for c in report.checks if c.status == "fail"]
        raise CheckFailed(f"whoami: {', '.join(failed)} failed")
