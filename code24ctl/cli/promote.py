"""``code24ctl promote``: the candidate of a split (or a named version) at 100%, probed first."""

from __future__ import annotations

from typing import Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, YesOption, load
from code24ctl.cli.release_view import (
    WaitOption,
    deployment_message,
    finish_release,
    message_option,
    version_line,
)
from code24ctl.errors import Aborted


def promote(
    version_id: Annotated[
        str | None,
        typer.Argument(
            metavar="VERSION_ID",
            help="the version to take to 100% (a unique prefix is enough) [default: the "
            "candidate of the split]",
            show_default=False,
        ),
    ] = None,
    message: Annotated[str | None, message_option("code24ctl promote")] = None,
    yes: YesOption = False,
    wait: WaitOption = 10.0,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Take the candidate of a split deployment to 100%, after probing it.

    The candidate is probed through the version override first (a failing probe changes
    nothing, exit 1), then you are asked (--yes for CI; without a terminal it refuses unless
    --yes). With no split there is nothing to promote (exit 2); VERSION_ID names a version
    explicitly. A version outside the deployment is never taken to 100% unprobed: once you
    confirm, it goes in at 0% and is probed through the override, as `deploy --canary` does;
    a failing probe, or Ctrl-C, puts the deployment back (exit 1, 130). An environment with
    nothing to probe (no base_url) is refused before the question (exit 2). --message says
    why, on the deployment it makes (`versions` shows it).
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.promote import plan_promote, probe_candidate, run_promote
    from code24ctl.ops.release import require_versions

    message = deployment_message(message)
    resolved = load(config, env)
    require_versions(resolved)
    session = cloudflare_session(resolved)
    plan = plan_promote(session, resolved, version_id)
    output.note(f"promote of {plan.dispatcher} ({plan.environment})")
    output.note(f"  now: {plan.state.words}")
    output.note(f"  to:  {plan.target.id} at 100%")
    output.note(f"    {version_line(plan.target)}")
    probed = probe_candidate(resolved, plan, wait_s=wait, say=output.note)
    if not plan.in_deployment:
        output.note(
            f"  version {plan.target.id} is not in the deployment: it goes in at 0% and is "
            "probed through the version override before it takes traffic"
        )
    if probed is None or probed.ok:
        question = f"Promote version {plan.target.id} of {plan.environment} to 100%?"
        if not output.confirm(question, yes=yes):
            raise Aborted(f"nothing was changed in {plan.environment}")
    report = run_promote(
        session, resolved, plan, probed, wait_s=wait, message=message, say=output.note
    )
    finish_release(report, json_output)
