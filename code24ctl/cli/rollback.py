"""``code24ctl rollback``: the dispatcher back to its stable version (or a named one) at 100%,
then probed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from code24ctl.ops.release import RollbackPlan


def rollback(
    version_id: Annotated[
        str | None,
        typer.Argument(
            metavar="VERSION_ID",
            help="the version to return to; a unique prefix is enough [default: the stable "
            "version of a split, else the last one that served 100%]",
            show_default=False,
        ),
    ] = None,
    message: Annotated[str | None, message_option("code24ctl rollback")] = None,
    yes: YesOption = False,
    wait: WaitOption = 10.0,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Return the dispatcher to its stable version (or VERSION_ID) at 100%, then probe.

    During a split: the stable version. Otherwise the previous version that served 100%.
    Shows the versions involved and asks first; --yes skips the question, and without a
    terminal it refuses unless --yes. When the API refuses because secrets changed since that
    version, it says which, asks again, and retries with force. An unknown VERSION_ID is exit 2.
    Exit 1 when the probe afterwards fails (the rollback stays in place). A version that
    never served 100% is probed through the version override before it takes traffic (put in
    at 0% first, as `deploy --canary` does; a failing probe puts the deployment back, exit 1).
    Ctrl-C once the rollback may have been sent leaves it, and says what serves.
    --message says why, on the deployment it makes (`versions` shows it).
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.release import require_versions
    from code24ctl.ops.rollback import plan_rollback, run_rollback

    message = deployment_message(message)
    resolved = load(config, env)
    require_versions(resolved)
    session = cloudflare_session(resolved)
    plan = plan_rollback(session, resolved, version_id)
    if not json_output or (not yes and output.is_terminal()):
        _show_rollback(plan)
    question = f"Roll the dispatcher of {plan.environment} back to version {plan.target.id}?"
    if not output.confirm(question, yes=yes):
        raise Aborted(f"nothing was changed in {plan.environment}")

    def confirm_force(secrets: list[str]) -> bool:
        output.note(
            f"the API refused: secrets changed since version {plan.target.id} was deployed "
            f"({', '.join(secrets) or 'not named'}); rolling back anyway runs that version "
            "with the secrets as they are now"
        )
        return output.confirm(f"Roll back to {plan.target.id} anyway (force)?", yes=yes)

    report = run_rollback(
        session,
        resolved,
        plan,
        confirm_force=confirm_force,
        wait_s=wait,
        message=message,
        say=output.note,
    )
    finish_release(report, json_output)


def _show_rollback(plan: RollbackPlan) -> None:
    output.note(f"rollback of {plan.dispatcher} ({plan.environment})")
    output.note(f"  now: {plan.state.words}")
    for version in plan.involved:
        if version.id != plan.target.id:
            output.note(f"    {version_line(version)}")
    output.note(f"  to:  {plan.target.id} at 100% ({plan.reason})")
    output.note(f"    {version_line(plan.target)}")
    if not plan.proven:
        output.note(
            f"  version {plan.target.id} never served 100%: it is probed through the version "
            "override before it takes traffic"
        )
