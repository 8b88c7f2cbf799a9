"""A release's report for people: shared by ``deploy --gradual/--canary``, ``promote`` and
``rollback``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from code24ctl.cli import output
from code24ctl.cli.probe import render_report
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.versions import DeploymentInfo, VersionInfo
    from code24ctl.ops.release import ReleaseReport


WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        metavar="S",
        help="wait up to S seconds for the new version to answer through the version override "
        f"[default: {DEFAULT_VERSION_WAIT_S:g}]",
        show_default=False,
    ),
]


def message_option(command: str) -> Any:
    """``--message``/``-m`` of a command that makes a deployment (``promote``, ``rollback``)."""
    return typer.Option(
        "--message",
        "-m",
        metavar="TEXT",
        help="the message of the deployment it makes (its workers/message annotation, shown "
        f"by versions) [default: {command}]",
        show_default=False,
    )


def deployment_message(message: str | None) -> str | None:
    """The --message given, refused when blank (an unset shell variable, most likely)."""
    if message is not None and not message.strip():
        raise UsageError("--message is empty", hint="give the message, or leave --message out")
    return message


def finish_release(report: ReleaseReport, json_output: bool) -> None:
    """Print a release's report (its document with --json) and its notes; fail as it did."""
    from code24ctl.ops.release import failure

    if json_output:
        from code24ctl.cli.schemas import ReleaseDocument

        output.emit(ReleaseDocument(**dict(report)))
    else:
        render_release(report)
    for note in report.notes:
        output.note(note)
    if not report.ok:
        raise failure(report)


def version_line(version: VersionInfo) -> str:
    """One version: id, number, what made it (code24ctl and config hash, or tag), message."""
    parts: list[str] = []
    if version.code24ctl_version and version.config_hash:
        parts += [f"code24ctl {version.code24ctl_version}", f"config {version.config_hash}"]
    elif version.tag:
        parts.append(f"tag {version.tag}")
    if version.message:
        parts.append(repr(version.message))
    number = f" #{version.number}" if version.number is not None else ""
    return f"{version.id}{number}" + (f" ({', '.join(parts)})" if parts else "")


def split_line(deployment: DeploymentInfo | None) -> str:
    """Which versions serve what share: ``v1 at 90%, v2 at 10%``."""
    if deployment is None:
        return "nothing"
    return ", ".join(f"{s.version_id} at {s.percentage:g}%" for s in deployment.versions)


def render_release(report: ReleaseReport) -> None:
    """A release (gradual, canary, promote, rollback) for people, on stdout."""
    console = output.stdout()

    def say(text: str = "") -> None:
        console.print(text, markup=False)

    say(f"dispatcher {report.dispatcher} ({report.environment})")
    say(f"before: {split_line(report.before)}")
    if report.version is not None:
        verb = {"gradual": "uploaded", "canary": "uploaded"}
        say(f"{verb.get(report.strategy, 'to')}: {version_line(report.version)}")
    for run in report.probes:
        say()
        if run.stage == "override":
            say(f"probe of version {run.report.version} through the version override header:")
        elif run.stage == "split":
            say(f"probe after the split ({run.report.settings.repeat} requests per route):")
        else:
            say("probe after the rollback:")
        render_report(run.report)
        for note in run.report.notes:
            output.note(note)
    say()
    say(f"after: {split_line(report.after)}")
    if report.state is not None:
        say(f"state: {report.state.words}")
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
