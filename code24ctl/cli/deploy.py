"""``code24ctl deploy``: upload the dispatcher Worker with its bindings; make the routes match."""

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
    load,
)
from code24ctl.cli.session import cloudflare_session
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.ops.deploy import DeployResult, RouteChange

WranglerTomlOption = Annotated[
    Path | None,
    typer.Option(
        "--wrangler-toml",
        metavar="PATH",
        dir_okay=False,
        help="also write the equivalent wrangler.toml to PATH",
    ),
]


def deploy(
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    wrangler_toml: WranglerTomlOption = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Upload the dispatcher Worker with its bindings and make the zone routes match.

    Bindings: DISPATCHER (the env's namespace), METADATA (KV, found by title or created), the
    vars, and ROUTE_TABLE (routes, fallbacks, timeouts). --dry-run prints the upload metadata
    and the route changes and writes nothing. A route routed to another Worker is a conflict
    (exit 3) unless --force.
    """
    from code24ctl.cloudflare.namespaces import namespace_missing
    from code24ctl.ops.deploy import conflict_error, route_zones, run_deploy
    from code24ctl.ops.wrangler_toml import render_wrangler_toml

    session = cloudflare_session(load(config, env))
    result = run_deploy(
        session.client, session.account_id, session.resolved, dry_run=dry_run, force=force
    )
    if wrangler_toml is not None:
        text = render_wrangler_toml(
            result.dispatcher, result.metadata, route_zones(result), source=session.resolved.path
        )
        try:
            wrangler_toml.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write {wrangler_toml}: {exc.strerror or exc}",
                hint="the deploy itself is done; rerun with --dry-run --wrangler-toml PATH",
            ) from None
        output.note(f"wrote {wrangler_toml}")
    if json_output:
        actions = ("create", "update", "unchanged", "conflict")
        output.emit_document(
            result,
            environment=result.environment,
            namespace=result.namespace,
            summary={
                f"routes_{a}": sum(route.action == a for route in result.routes) for a in actions
            },
        )
    elif dry_run:
        _render_dry_run(result)
    else:
        _render(result)
    if not result.namespace_exists:
        raise namespace_missing(
            result.namespace,
            session.resolved.env_name,
            why="; the dispatcher cannot be uploaded without it",
        )
    if result.conflicts:
        raise conflict_error(result)


def _route_line(route: RouteChange, dry_run: bool) -> str:
    owner = route.owner or "no Worker"
    if route.action == "unchanged":
        return f"route {route.pattern}: unchanged"
    if route.action == "create":
        return f"route {route.pattern}: {'would create' if dry_run else 'created'} ({route.zone})"
    if route.action == "update":
        verb = "would take over" if dry_run else "taken over"
        return f"route {route.pattern}: {verb} from {owner}"
    return f"route {route.pattern}: conflict, routed to {owner} (rerun with --force to take it)"


def _render_dry_run(result: DeployResult) -> None:
    # The metadata alone on stdout, so `deploy --dry-run > metadata.json` is the upload's part.
    output.emit_json(result.metadata)
    if result.kv is not None:
        output.note(f"KV namespace {result.kv.title}: {result.kv.action}")
    verb = "would upload" if result.dispatcher_action == "upload" else "unchanged:"
    output.note(f"{verb} dispatcher {result.dispatcher}")
    for route in result.routes:
        output.note(_route_line(route, dry_run=True))
    output.note("dry run: nothing was written")


def _render(result: DeployResult) -> None:
    console = output.stdout()
    names = ", ".join(str(b["name"]) for b in result.metadata["bindings"])
    if result.kv is not None:
        console.print(
            f"KV namespace {result.kv.title}: {result.kv.action} (id {result.kv.id})", markup=False
        )
    if result.uploaded:
        sizes = ", ".join(f"{m.name} {m.size} bytes" for m in result.modules)
        console.print(
            f"uploaded dispatcher {result.dispatcher} ({sizes}); bindings: {names}", markup=False
        )
    else:
        console.print(f"dispatcher {result.dispatcher} unchanged (bindings: {names})", markup=False)
    for route in result.routes:
        console.print(_route_line(route, dry_run=False), markup=False)
