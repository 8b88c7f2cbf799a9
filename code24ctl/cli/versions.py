"""``code24ctl versions``: the dispatcher's recent versions and the deployment serving now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load

if TYPE_CHECKING:
    from code24ctl.ops.versions import VersionsReport


def versions(
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=100, metavar="N", help="show the newest N versions"),
    ] = 10,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the dispatcher's recent versions and the deployment serving now.

    The deployment: its versions and shares, since when, and its message. Per version: id,
    number, when, author (where the API gives one), its share of the traffic,
    and the annotations: which code24ctl uploaded it and the hash of the route table and
    bindings it carries ("current" when that is what the config would upload now).
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.release import require_versions
    from code24ctl.ops.versions import list_release_state

    resolved = load(config, env)
    require_versions(resolved)
    session = cloudflare_session(resolved)
    report = list_release_state(session, resolved, limit=limit)
    if json_output:
        from code24ctl.cli.schemas import VersionsDocument

        output.emit(VersionsDocument(**dict(report)))
    else:
        _render(report)


def _render(report: VersionsReport) -> None:
    console = output.stdout()
    deployment = report.deployment
    if deployment is None:
        console.print(f"dispatcher {report.dispatcher}: no deployment", markup=False)
    else:
        split = ", ".join(f"{s.version_id} {s.percentage:g}%" for s in deployment.versions)
        kind = "split deployment" if deployment.split else "deployment"
        said = f", message {deployment.message!r}" if deployment.message else ""
        console.print(
            f"{kind} of {report.dispatcher} ({report.environment}): {split} "
            f"(since {deployment.created_on or '?'}{said})",
            markup=False,
        )
    console.print(f"state: {report.state.words}", markup=False)
    from rich.markup import escape

    rows = []
    for row in report.versions:
        config = row.config_hash or "-"
        if row.config_hash and row.config_hash == report.config_hash:
            config += " (current)"
        cells = [
            "-" if row.percentage is None else f"{row.percentage:g}%",
            row.id,
            "-" if row.number is None else str(row.number),
            row.created_on or "-",
            row.author or "-",
            row.code24ctl_version or "-",
            config,
            row.message or (f"tag {row.tag}" if row.tag else "-"),
        ]
        rows.append([escape(cell) for cell in cells])
    # An id split over lines cannot be copied: narrow terminals lose columns instead.
    output.print_table(
        ["traffic", "version", "#", "created", "author", "code24ctl", "config", "message"],
        rows,
        drop_order=["message", "author", "code24ctl", "config", "created", "#"],
    )
