"""``code24ctl deploy``: upload the dispatcher Worker with its bindings; make the routes match
(``--gradual``/``--canary``: a new version beside the current one instead)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import (
    ConfigOption,
    DryRunOption,
    EnvOption,
    ForceOption,
    JsonOption,
    UnprobedOption,
    load,
)
from code24ctl.cli.plan_view import plan_lines
from code24ctl.cli.release_view import WaitOption, finish_release
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from code24ctl.ops.deploy import DeployReport
    from code24ctl.ops.deploy_routes import RouteChange

WranglerTomlOption = Annotated[
    Path | None,
    typer.Option(
        "--wrangler-toml",
        metavar="PATH",
        dir_okay=False,
        help="also write the equivalent wrangler.toml to PATH, and dispatcher.js beside it "
        "(a file code24ctl did not write is refused unless --force)",
    ),
]
ShowMetadataOption = Annotated[
    bool,
    typer.Option("--show-metadata", metavar="", help="print the upload's metadata JSON on stdout"),
]


def deploy(
    gradual: Annotated[
        float | None,
        typer.Option(
            "--gradual",
            metavar="PERCENT",
            help="upload a version, probe it through the version override, then deploy it "
            "at PERCENT, the current one at the rest; any failure puts the deployment back "
            "(exit 1)",
        ),
    ] = None,
    canary: Annotated[
        float | None,
        typer.Option(
            "--canary",
            metavar="PERCENT",
            help="upload a version, probe it through the version override, then deploy it "
            "at PERCENT and probe again; any failure puts the deployment back (exit 1)",
        ),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            metavar="TEXT",
            help="--gradual/--canary: the new version's message, and its deployment's",
        ),
    ] = None,
    repeat: Annotated[
        int | None,
        typer.Option(
            "--repeat",
            min=1,
            metavar="N",
            help="--canary: requests per route after the split (10 if not given)",
        ),
    ] = None,
    wait: WaitOption = DEFAULT_VERSION_WAIT_S,
    unprobed: UnprobedOption = False,
    ignore_rollout: Annotated[
        bool,
        typer.Option(
            "--ignore-rollout",
            metavar="",
            help="upload the dispatcher even over a split deployment (ends the rollout)",
        ),
    ] = False,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    wrangler_toml: WranglerTomlOption = None,
    show_metadata: ShowMetadataOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Upload the dispatcher Worker with its bindings and make the zone routes match.

    Bindings: DISPATCHER (the env's namespace), METADATA (KV, found by title or created), the
    vars, and ROUTE_TABLE (routes, fallbacks, timeouts). --dry-run prints the plan (+ create,
    ~ update with each field old -> new, - delete) and writes nothing. A route routed to
    another Worker is a conflict (exit 2) unless --force.
    Prints the version the upload created.

    Over a serving dispatcher, a changed one goes up as a new version, deployed at 0% beside
    the serving one and probed through the version override (waiting up to --wait for it to
    answer); only a passing probe deploys it at 100%, a failing one puts the deployment back
    (exit 1). Without a base_url to probe it is refused (exit 2) before anything is written.
    A first deploy (nothing serves yet) and --unprobed upload it live at 100% at once, not
    probed.

    --gradual and --canary release a new version beside the current one instead (the
    "Releasing the dispatcher" section of the README): it is probed through the version
    override before it takes traffic (--wait), and routes are not touched. A plain
    deploy over a split deployment (an unfinished canary or gradual rollout) is refused (exit
    2) unless --ignore-rollout: the upload would end the split at 100% of a third version.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.changes import ChangeLog
    from code24ctl.ops.deploy import Probing, execute_deploy, plan_deploy, preview
    from code24ctl.ops.wrangler_toml import WranglerExport

    if gradual is not None or canary is not None:
        if dry_run or force or unprobed or wrangler_toml is not None:
            raise UsageError(
                "--gradual/--canary do not go with --dry-run, --force, --unprobed or "
                "--wrangler-toml"
            )
        _release(
            gradual=gradual,
            canary=canary,
            message=message,
            repeat=repeat,
            wait=wait,
            config=config,
            env=env,
            json_output=json_output,
        )
        return
    if message is not None:
        raise UsageError("--message goes with --gradual or --canary")
    if repeat is not None:
        raise UsageError("--repeat goes with --canary")
    resolved = load(config, env)
    session = cloudflare_session(resolved, pages=output.page_lines)
    export = None
    if wrangler_toml is not None:
        export = WranglerExport(wrangler_toml, source=resolved.path)
        export.check(force=force)  # before anything is written
    with (
        output.interruptible("deploy", f"code24ctl deploy --env {resolved.env_name}"),
    ):
        plan = plan_deploy(session, resolved, force=force, unprobed=unprobed)
        if plan.dispatcher_action == "upload" and not dry_run and not ignore_rollout:
            from code24ctl.ops.release import refuse_over_rollout

            refuse_over_rollout(session, resolved, "deploy", plan.namespace_exists)
        probing = Probing(unprobed=unprobed, wait_s=wait, say=output.note)
        log = ChangeLog()
        report = (
            preview(plan)
            if dry_run
            else execute_deploy(session, resolved, plan, log=log, probing=probing)
        )
    # The deploy's own result first: a failing export below never hides it.
    if json_output:
        from code24ctl.cli.schemas import DeployDocument

        output.emit(DeployDocument(**dict(report), summary=report.counts()))
    else:
        # --show-metadata: stdout is the metadata alone (for jq); the report goes to stderr.
        console = output.stderr() if show_metadata else output.stdout()
        if show_metadata:
            output.emit_json(report.metadata)
        if dry_run:
            _render_dry_run(report, console, writes_files=export is not None)
        else:
            _render(report, console, probe_table=not show_metadata)
    if not report.ok:
        from code24ctl.ops.deploy_probed import deploy_failure

        error = deploy_failure(report)
        error.changes = log.changes
        raise error
    if export is not None:
        for path in export.write(report, deployed=not dry_run):
            output.note(f"wrote {path}")
    if dry_run and not plan.namespace_exists:
        from code24ctl.cloudflare.namespaces import namespace_missing

        raise namespace_missing(
            plan.namespace, resolved.env_name, why="; the dispatcher cannot be uploaded without it"
        )
    if dry_run and plan.conflicts:
        raise plan.conflict_error()


def _route_line(route: RouteChange, dry_run: bool) -> str:
    owner = route.owner or "no Worker"
    if route.action == "unchanged":
        return f"route {route.pattern}: unchanged"
    if route.action == "delete":
        verb = "would delete" if dry_run else "deleted"
        return f"route {route.pattern}: {verb} (no longer configured, {route.zone})"
    if route.action == "create":
        return f"route {route.pattern}: {'would create' if dry_run else 'created'} ({route.zone})"
    if route.action == "update":
        verb = "would take over" if dry_run else "taken over"
        return f"route {route.pattern}: {verb} from {owner}"
    if route.action == "conflict":
        return f"route {route.pattern}: conflict, routed to {owner} (rerun with --force to take it)"
    return f"route {route.pattern}: {route.action}"


def _render_dry_run(report: DeployReport, console: Console, *, writes_files: bool) -> None:
    changes = report.changes()
    for line in plan_lines(changes):
        console.print(line, markup=False)
    for route in report.conflicts:
        console.print(
            _route_line(route, dry_run=True).replace("route ", "! route ", 1), markup=False
        )
    if not changes:
        console.print(f"dispatcher {report.dispatcher}: nothing to change", markup=False)
    # With --wrangler-toml the export below is still written: say exactly what is not.
    output.note(
        "dry run: nothing was written to Cloudflare"
        if writes_files
        else "dry run: nothing was written"
    )


def _render(report: DeployReport, console: Console, *, probe_table: bool) -> None:
    names = ", ".join(str(b["name"]) for b in report.metadata["bindings"])
    if report.kv is not None:
        console.print(
            f"KV namespace {report.kv.title}: {report.kv.action} (id {report.kv.id})", markup=False
        )
    if report.uploaded:
        sizes = ", ".join(f"{m.name} {m.size} bytes" for m in report.modules)
        console.print(
            f"uploaded dispatcher {report.dispatcher} ({sizes}); bindings: {names}", markup=False
        )
        _render_upload(report, console, probe_table)
    else:
        console.print(f"dispatcher {report.dispatcher} unchanged (bindings: {names})", markup=False)
    if not report.ok:
        return  # a failed probe stops the deploy before the routes: none was written
    for route in report.routes:
        console.print(_route_line(route, dry_run=False), markup=False)


def _render_upload(report: DeployReport, console: Console, probe_table: bool) -> None:
    from code24ctl.cli.probe import render_report
    from code24ctl.cli.release_view import split_line

    version = report.version_id or "not reported by the API"
    if report.unprobed is not None:
        console.print(f"version {version} deployed at 100% ({report.unprobed})", markup=False)
        return
    console.print(f"before: {split_line(report.before)}", markup=False)
    if report.probe is not None:
        verdict = "passed" if report.probe.ok else "failed"
        console.print(
            f"probe of version {version} through the version override header: {verdict}",
            markup=False,
        )
        # --show-metadata keeps stdout for the metadata: the table (stdout) is left out.
        if probe_table:
            render_report(report.probe)
        for note in report.probe.notes:
            output.note(note)
    console.print(f"after: {split_line(report.after)}", markup=False)
    if report.ok:
        console.print(
            f"version {version} deployed at 100%, probed through the version override first",
            markup=False,
        )
    else:
        console.print(f"deploy failed: {report.error}", markup=False)


def _release(
    *,
    gradual: float | None,
    canary: float | None,
    message: str | None,
    repeat: int | None,
    wait: float,
    config: str | None,
    env: str | None,
    json_output: bool,
) -> None:
    """``deploy --gradual PERCENT`` / ``deploy --canary PERCENT``: a new version, split."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops import release, rollout
    from code24ctl.ops.release import CANARY_REPEAT

    if gradual is not None and canary is not None:
        raise UsageError("--gradual and --canary do not go together: choose one")
    if gradual is not None and repeat is not None:
        raise UsageError(
            "--repeat goes with --canary: a gradual rollout probes once, before its split"
        )
    resolved = load(config, env)
    release.require_versions(resolved)
    session = cloudflare_session(resolved)
    if gradual is not None:
        report = rollout.gradual(
            session, resolved, gradual, message=message, wait_s=wait, say=output.note
        )
    else:
        assert canary is not None
        report = rollout.canary(
            session,
            resolved,
            canary,
            message=message,
            repeat=CANARY_REPEAT if repeat is None else repeat,
            wait_s=wait,
            say=output.note,
        )
    finish_release(report, json_output)
