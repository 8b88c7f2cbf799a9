"""``code24ctl doctor``: token, account, namespace, workers, dispatcher, routes, then a probe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.cli.plan_view import field_line
from code24ctl.errors import CheckFailed

if TYPE_CHECKING:
    from code24ctl.ops.doctor_report import Check

BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", metavar="URL", help="probe this URL instead of the env's base_url"),
]

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def doctor(
    base_url: BaseUrlOption = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check token, account, Workers for Platforms, namespace, each worker, the dispatcher and
    its bindings, routes, the outbound Worker, then probe every route.

    For a local environment (serve's): Node.js 20+ and miniflare (for --runtime workerd), what
    answers each alias, then probe the running serve.

    One line per check: ok / warn / fail / skip and the command that fixes it. Exit 1 if any
    check fails.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.doctor import run_doctor
    from code24ctl.ops.doctor_local import run_local_doctor

    resolved = load(config, env)
    if resolved.is_local:
        # serve's environment: Node.js and miniflare (workerd runtime), sources, a probe.
        report = run_local_doctor(resolved, base_url=base_url)
        namespace = None
    else:
        session = cloudflare_session(resolved)
        report = run_doctor(session, resolved, base_url=base_url)
        namespace = resolved.namespace()
    if json_output:
        from code24ctl.cli.schemas import DoctorDocument

        output.emit(
            DoctorDocument(
                environment=report.environment,
                namespace=namespace,
                ok=report.ok,
                checks=report.checks,
                summary=report.counts,
            )
        )
    else:
        print_checks(report.checks)
        counts = report.counts
        output.note(
            f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail, "
            f"{counts['skip']} skipped"
        )
    if not report.ok:
        failed = [c.name for c in report.checks if c.status == "fail"]
        raise CheckFailed(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}")


def print_checks(checks: Sequence[Check]) -> None:
    """One line per check on stdout (``ok``/``warn``/``FAIL``/``skip``), with its fix."""
    from rich.text import Text

    console = output.stdout()
    for check in checks:
        line = Text()
        line.append(_MARKS[check.status], style=_STYLES[check.status])
        line.append(f"  {check.name}: {check.detail}")
        for found in check.differences:
            line.append(f"\n      {field_line(found)}")
        if check.fix and check.status in ("fail", "warn"):
            line.append(f"\n      fix: {check.fix}")
        console.print(line)
