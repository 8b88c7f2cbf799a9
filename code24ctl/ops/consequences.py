"""What a destructive command would break, said before it asks: routes, environments and the
live dispatcher.

``unbind`` and ``namespace delete`` print these before their question, so the answer is given
knowing that ``/elite/brand`` still routes to the Worker, or that the namespace is staging's
and the live dispatcher is bound to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from code24ctl.errors import Code24Error

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig


def unbind_consequences(resolved: ResolvedConfig, names: Sequence[str]) -> list[str]:
    """For each Worker about to be deleted, the route-table prefixes that still send requests
    to it in this environment (they would get the worker's fallback, worker_not_found)."""
    said: list[str] = []
    dispatcher = resolved.dispatcher()
    for name in names:
        prefixes = [route.prefix for route in resolved.config.routes if route.worker == name]
        if prefixes:
            verb = "routes" if len(prefixes) == 1 else "route"
            said.append(
                f"{', '.join(prefixes)} still {verb} to {name} in {resolved.env_name}: the "
                f"live dispatcher {dispatcher} would answer there with the fallback "
                f"(worker_not_found) until it is bound again or the route is removed"
            )
    return said


@dataclass(frozen=True)
class Consequences:
    """What a delete would break, as sentences; ``live`` when a deployed dispatcher is bound
    to what is deleted."""

    said: list[str]
    live: bool = False


def namespace_delete_consequences(
    session: CloudflareSession, namespace: str, config_path: str
) -> Consequences:
    """Which environments of the config use ``namespace``, and whether their deployed
    dispatcher is bound to it (every route then fails). Best effort: a config that cannot be
    read, or a dispatcher that cannot be read, is said, never a reason to stop."""
    from code24ctl.config import load_config, resolve_config
    from code24ctl.ops.deploy import deployed_dispatcher
    from code24ctl.ops.dispatcher_worker import DISPATCHER_BINDING

    if not Path(config_path).is_file():
        return Consequences([])
    said: list[str] = []
    live = False
    try:
        environments = list(load_config(config_path).environments)
        users = [resolve_config(config_path, env) for env in environments]
    except Code24Error:
        return Consequences(
            [f"could not read {config_path} to tell which environment uses {namespace}"]
        )
    for resolved in users:
        if resolved.is_local or resolved.namespace() != namespace:
            continue
        dispatcher = resolved.dispatcher()
        routes = ", ".join(resolved.environment.routes) or "its workers.dev URL"
        said.append(
            f"{namespace} is the {resolved.env_name} environment's namespace ({config_path})"
        )
        try:
            deployed = deployed_dispatcher(session, dispatcher)
        except Code24Error as exc:
            said.append(f"could not read dispatcher {dispatcher} to tell: {exc.message}")
            continue
        bound = deployed is not None and any(
            b.get("name") == DISPATCHER_BINDING and b.get("namespace") == namespace
            for b in deployed.bindings
        )
        if bound:
            live = True
            said.append(
                f"the live dispatcher {dispatcher} is bound to it: every route of "
                f"{resolved.env_name} ({routes}) would then fail"
            )
    return Consequences(said, live)
