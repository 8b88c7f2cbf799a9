"""The dispatcher's zone routes: which zone holds each configured pattern
(:class:`ZoneResolver`), what deploy does about each route (:func:`plan_routes`, reads only),
and doing it (:func:`apply_route`). Routes of other Workers are never touched unless taken over
with ``--force``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.client import (
    api_call,
)
from code24ctl.cloudflare.listing import numbered_pages, single_page
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.worker_diff import Difference
from code24ctl.errors import CloudflareAPIError
from code24ctl.ops.plan import PlannedChange

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.cloudflare.session import CloudflareSession


RouteAction = Literal["delete", "create", "unchanged", "update", "conflict"]


class RouteChange(BaseModel):
    """What deploy does (or would do) about one route pattern.

    ``action``: ``create`` (missing), ``unchanged`` (already routed to the dispatcher),
    ``update`` (owned by another Worker, taken over with --force), ``conflict`` (owned by
    another Worker and not forced; ``owner`` names it), ``delete`` (routed to this
    environment's dispatcher but no longer configured). ``applied`` says whether it was written.
    """

    pattern: str
    zone: str
    zone_id: str
    action: RouteAction
    owner: str | None = None
    route_id: str | None = None
    applied: bool = False

    def planned_change(self, dispatcher: str) -> PlannedChange | None:
        """This route as a plan line, or None when nothing is written for it."""
        action = _ROUTE_PLAN_ACTIONS.get(str(self.action))
        if action is None:
            return None
        fields = []
        if action == "update":
            fields = [Difference("bindings", "script", self.owner, dispatcher)]
        note = self.zone if action == "create" else None
        return PlannedChange(
            action=action, kind="route", name=self.pattern, note=note, fields=fields
        )


# Route actions that write, as plan actions; anything else (unchanged, conflict) writes nothing.
_ROUTE_PLAN_ACTIONS: dict[str, Literal["create", "update", "delete"]] = {
    "create": "create",
    "update": "update",
    "delete": "delete",
}


@dataclass(frozen=True)
class _ZoneRef:
    name: str
    id: str


def route_host(pattern: str) -> str:
    """The host of a route pattern, without a leading ``*`` / ``*.`` wildcard."""
    host = pattern.split("/", 1)[0].lower()
    host = host.removeprefix("*").removeprefix(".")
    return host.split(":", 1)[0]


def zone_candidates(host: str) -> list[str]:
    """Zone names to try for a host, dropping labels from the left (never a bare TLD)."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)] or [host]


class ZoneResolver:
    """Finds the zone of each route host (``GET /zones?name=&account.id=``), one lookup per name.

    The account filter is wrangler's (``getZoneIdFromHost``): a token that reaches several
    accounts may see a zone of the same name in another one, which is never ours to route.
    """

    def __init__(self, session: CloudflareSession, preferred: str | None = None) -> None:
        self._session = session
        self._preferred = preferred.lower() if preferred else None
        self._cache: dict[str, str | None] = {}

    def zone_id(self, name: str) -> str | None:
        """The id of the zone called exactly ``name``, or None."""
        if name not in self._cache:
            what = f"look up zone {name}"
            with api_call(what):
                # Paged like every zone listing, so a server ignoring `page` cannot loop it.
                zones = numbered_pages(
                    lambda page: self._session.client.zones.list(
                        name=name, account={"id": self._session.account_id}, page=page, per_page=50
                    ),
                    what,
                    pages=self._session.page_read,
                )
                found = [zone.id for zone in zones if zone.name == name]
            self._cache[name] = found[0] if found else None
        return self._cache[name]

    def for_pattern(self, pattern: str) -> _ZoneRef:
        """The zone a route pattern belongs to; raises when the account has none."""
        host = route_host(pattern)
        names = zone_candidates(host)
        preferred = self._preferred
        if preferred and (host == preferred or host.endswith("." + preferred)):
            names = [preferred] + [name for name in names if name != preferred]
        for name in names:
            zone_id = self.zone_id(name)
            if zone_id is not None:
                return _ZoneRef(name=name, id=zone_id)
        raise CloudflareAPIError(
            f"no zone on this account for route {pattern} (tried {', '.join(names)})",
            hint="add the zone to the account, or fix `routes`/`zone` of the environment "
            "in namespaces.yaml",
        )


def list_routes(client: Cloudflare, zone: _ZoneRef) -> list[tuple[str, str, str | None]]:
    """A zone's Worker routes as ``(id, pattern, script)``.

    The SDK reads this listing as one unpaginated page (``SyncSinglePage``; wrangler follows a
    ``result_info.cursor`` only if one comes); an answer saying it holds only part is refused.
    """
    what = f"list Worker routes of zone {zone.name}"
    with api_call(what):
        routes = single_page(client.workers.routes.list(zone_id=zone.id), what)
        return [(r.id, r.pattern, r.script) for r in routes]


def plan_routes(
    session: CloudflareSession,
    patterns: Iterable[str],
    dispatcher: str,
    *,
    force: bool,
    zone: str | None = None,
) -> list[RouteChange]:
    """Compare the configured patterns with the zones' routes (reads only).

    Routes both ways: in every zone looked at (those of the patterns, and ``zone``), a route
    that points at ``dispatcher`` but is not configured any more becomes a ``delete``, listed
    first; routes of other Workers are never touched.
    """
    resolver = ZoneResolver(session, zone)
    existing: dict[str, list[tuple[str, str, str | None]]] = {}
    zones: dict[str, _ZoneRef] = {}
    changes: list[RouteChange] = []
    patterns = list(patterns)
    if zone is not None:
        zone_id = resolver.zone_id(zone.lower())
        if zone_id is not None:
            zones[zone_id] = _ZoneRef(name=zone.lower(), id=zone_id)
    for pattern in patterns:
        ref = resolver.for_pattern(pattern)
        zones.setdefault(ref.id, ref)
        if ref.id not in existing:
            existing[ref.id] = list_routes(session.client, ref)
        match = next((r for r in existing[ref.id] if r[1] == pattern), None)
        if match is None:
            action: RouteAction = "create"
            owner = route_id = None
        else:
            route_id, owner = match[0], match[2]
            action = "unchanged" if owner == dispatcher else "update" if force else "conflict"
        changes.append(
            RouteChange(
                pattern=pattern,
                zone=ref.name,
                zone_id=ref.id,
                action=action,
                owner=owner,
                route_id=route_id,
            )
        )
    stale: list[RouteChange] = []
    for ref in zones.values():
        if ref.id not in existing:
            existing[ref.id] = list_routes(session.client, ref)
        stale.extend(
            RouteChange(
                pattern=pattern,
                zone=ref.name,
                zone_id=ref.id,
                action="delete",
                owner=owner,
                route_id=route_id,
            )
            for route_id, pattern, owner in existing[ref.id]
            if owner == dispatcher and pattern not in patterns
        )
    return stale + changes


def apply_route(session: CloudflareSession, route: RouteChange, dispatcher: str) -> None:
    """Create, take over or delete one route of the dispatcher; unchanged ones are left alone.

    A create whose answer is lost is read back (:func:`write_checked`); a delete retried
    after its answer was lost finds the route gone, which is what was asked.
    """
    client = session.client
    if route.action == "delete" and route.route_id:
        route_id = route.route_id
        try:
            with api_call(f"delete route {route.pattern} (no longer configured)"):
                client.workers.routes.delete(route_id, zone_id=route.zone_id)
        except CloudflareAPIError as exc:
            if exc.status != 404:
                raise
        route.applied = True
    elif route.action == "create":

        def create() -> str:
            with api_call(f"create route {route.pattern}"):
                created = client.workers.routes.create(
                    zone_id=route.zone_id, pattern=route.pattern, script=dispatcher
                )
            return created.id if created is not None and created.id else ""

        def read_back() -> str | None:
            for route_id, pattern, script in list_routes(
                client, _ZoneRef(route.zone, route.zone_id)
            ):
                if pattern == route.pattern and script == dispatcher:
                    return route_id
            return None

        found = write_checked(
            f"create route {route.pattern}", create, read_back, shows="code24ctl deploy --dry-run"
        )
        route.route_id = found or None
        route.applied = True
    elif route.action == "update" and route.route_id:
        with api_call(f"take over route {route.pattern} from {route.owner}"):
            client.workers.routes.update(
                route.route_id, zone_id=route.zone_id, pattern=route.pattern, script=dispatcher
            )
        route.applied = True
