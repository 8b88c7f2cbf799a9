"""``code24ctl promote``, ``rollback``, and ``deploy --gradual/--canary``: release by version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, YesOption, load
from code24ctl.errors import Aborted, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.versions import DeploymentInfo, VersionInfo
    from code24ctl.ops.release import ReleaseReport, RollbackPlan


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
    _finish(report, json_output)


def rollback(
    version_id: Annotated[
        str | None,
        typer.Argument(
            metavar="VERSION_ID",
            help="the version to return to [default: the last one that served 100%]",
            show_default=False,
        ),
    ] = None,
    yes: YesOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Return the dispatcher to the previous version (or VERSION_ID) at 100%, then probe.

    Shows the versions involved and asks first; --yes skips the question, and without a
    terminal it refuses unless --yes. Exit 1 when the probe afterwards fails (the rollback
    stays in place).
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.release import plan_rollback, require_versions, run_rollback

    resolved = load(config, env)
    require_versions(resolved)
    session = cloudflare_session(resolved)
    plan = plan_rollback(session, resolved, version_id)
    if not json_output or (not yes and output.is_terminal()):
        _show_rollback(plan)
    question = f"Roll the dispatcher of {plan.environment} back to version {plan.target.id}?"
    if not output.confirm(question, yes=yes):
        raise Aborted(f"nothing was changed in {plan.environment}")
    report = run_rollback(session, resolved, plan)
    _finish(report, json_output)


def release_from_deploy(
    *,
    gradual: float | None,
    canary: float | None,
    message: str | None,
    repeat: int,
    config: str | None,
    env: str | None,
    json_output: bool,
) -> None:
    """``deploy --gradual PERCENT`` / ``deploy --canary PERCENT`` (called by ``deploy``)."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops import release

    if gradual is not None and canary is not None:
        raise UsageError("--gradual and --canary do not go together: choose one")
    resolved = load(config, env)
    release.require_versions(resolved)
    session = cloudflare_session(resolved)
    if gradual is not None:
        report = release.gradual(session, resolved, gradual, message=message)
    else:
        assert canary is not None
        report = release.canary(
            session,
            resolved,
            canary,
            message=message,
            repeat=repeat,
        )
    _finish(report, json_output)


# --------------------------------------------------------------------------------------------
# Rendering


def _finish(report: ReleaseReport, json_output: bool) -> None:
    from code24ctl.ops.release import failure

    if json_output:
        from code24ctl.cli.schemas import ReleaseDocument

        output.emit(ReleaseDocument(**dict(report)))
    else:
        _render(report)
    for note in report.notes:
        output.note(note)
    if not report.ok:
        raise failure(report)


def _version_line(version: VersionInfo) -> str:
    parts: list[str] = []
    if version.code24ctl_version and version.config_hash:
        parts += [f"code24ctl {version.code24ctl_version}", f"config {version.config_hash}"]
    elif version.tag:
        parts.append(f"tag {version.tag}")
    if version.message:
        parts.append(repr(version.message))
    number = f" #{version.number}" if version.number is not None else ""
    return f"{version.id}{number}" + (f" ({', '.join(parts)})" if parts else "")


def _split_line(deployment: DeploymentInfo | None) -> str:
    if deployment is None:
        return "nothing"
    return ", ".join(f"{s.version_id} at {s.percentage:g}%" for s in deployment.versions)


def _render(report: ReleaseReport) -> None:
    from code24ctl.cli.probe import render_report

    console = output.stdout()

    def say(text: str = "") -> None:
        console.print(text, markup=False)

    say(f"dispatcher {report.dispatcher} ({report.environment})")
    say(f"before: {_split_line(report.before)}")
    if report.version is not None:
        verb = {"gradual": "uploaded", "canary": "uploaded", "rollback": "to"}
        say(f"{verb.get(report.strategy, 'newest')}: {_version_line(report.version)}")
    for run in report.probes:
        say()
        if run.stage == "override":
            say(f"probe of version {run.report.version} through the version override header:")
        elif run.stage == "split":
            say(f"probe after the split ({run.report.settings.repeat} requests per route):")
        else:
            say("probe after the rollback:")
        render_report(run.report)
    say()
    say(f"after: {_split_line(report.after)}")
    if report.error:
        say(f"{report.strategy} failed: {report.error}")
    elif report.strategy in ("gradual", "canary") and report.version is not None:
        share = report.after.share_of(report.version.id) if report.after else None
        say(
            f"{report.strategy} done: version {report.version.id} serves {share or 0:g}%; "
            f"`code24ctl promote --env {report.environment}` takes it to 100%, "
            f"`code24ctl rollback --env {report.environment}` takes it back"
        )
    elif report.changed and report.version is not None:
        say(f"{report.strategy} done: version {report.version.id} serves 100%")


def _show_rollback(plan: RollbackPlan) -> None:
    output.note(f"rollback of {plan.dispatcher} ({plan.environment})")
    output.note(f"  now: {_split_line(plan.before)}")
    for version in plan.involved:
        if version.id != plan.target.id:
            output.note(f"    {_version_line(version)}")
    output.note(f"  to:  {plan.target.id} at 100%")
    output.note(f"    {_version_line(plan.target)}")
