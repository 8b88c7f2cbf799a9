"""Workers Observability (Workers Logs) through the SDK's typed calls:
``workers.observability.telemetry.query`` (stored events), ``.live_tail`` (a WebSocket address
for events as they happen) and ``.live_tail_heartbeat`` (keeps a live tail delivering).

Filters are the SDK's ``WorkersObservabilityFilterLeaf``: ``{key, operation, type, value}``;
``$metadata.service`` is the script that produced an event (the SDK's docstring:
"Worker script name that produced this event"). A token without the Workers Observability
permission gets a hint naming it (:data:`PERMISSION_HINT`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.client import api_call
from code24ctl.errors import CloudflareAPIError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

__all__ = [
    "PERMISSION_HINT",
    "Filter",
    "copy_observability",
    "heartbeat",
    "leaf",
    "open_live_tail",
    "query_events",
    "service_filter",
]

Filter = dict[str, Any]

#: The API reference lists "Workers Observability Write" as the permission live tail accepts
#: (developers.cloudflare.com/api/resources/workers/subresources/observability/subresources/
#: telemetry/methods/live_tail); the token templates name the read side "Workers
#: Observability Read". Refusals come back as 10000 (403) or 9109.
PERMISSION_HINT = (
    "the token lacks the Workers Observability permission: add Account > Workers "
    "Observability > Read (for `logs`) and Edit/Write (for `logs --follow`) to the API token"
)
_PERMISSION_CODES = frozenset({10000, 9109})


@contextmanager
def _observability_call(action: str) -> Iterator[None]:
    try:
        with api_call(action):
            yield
    except CloudflareAPIError as exc:
        if exc.code in _PERMISSION_CODES or exc.status == 403:
            raise CloudflareAPIError(
                str(exc).split("\n", 1)[0], code=exc.code, status=exc.status, hint=PERMISSION_HINT
            ) from None
        raise


def copy_observability(session: CloudflareSession, namespace: str, script: str) -> dict[str, Any]:
    """The ``observability`` setting of ``script`` in the namespace ({} when it has none)."""
    with api_call(f"read settings of {script} in dispatch namespace {namespace}"):
        settings = session.client.workers_for_platforms.dispatch.namespaces.scripts.settings.get(
            script, account_id=session.account_id, dispatch_namespace=namespace
        )
    found = settings.observability if settings is not None else None
    return found.model_dump(exclude_none=True) if found is not None else {}


def service_filter(scripts: Sequence[str]) -> Filter:
    """Events produced by any of ``scripts`` (``in`` takes comma-separated values)."""
    if len(scripts) == 1:
        return leaf("$metadata.service", "eq", scripts[0])
    return leaf("$metadata.service", "in", ",".join(scripts))


def leaf(key: str, operation: str, value: str | None = None) -> Filter:
    """One string filter (``value`` None: an operation that takes none, such as ``exists``)."""
    found: Filter = {"key": key, "operation": operation, "type": "string"}
    if value is not None:
        found["value"] = value
    return found


def query_events(
    session: CloudflareSession,
    *,
    start_ms: int,
    end_ms: int,
    filters: Sequence[Filter],
    needle: str | None = None,
    limit: int = 100,
    query_id: str = "code24ctl-logs",
) -> list[dict[str, Any]]:
    """The stored events in ``[start_ms, end_ms]`` matching every filter (and ``needle``), as
    the API answered them (``EventsEvent`` dicts, by alias: ``$metadata``, ``$workers``...)."""
    parameters: dict[str, Any] = {"filters": list(filters), "filterCombination": "and"}
    if needle:
        parameters["needle"] = {"value": needle, "matchCase": False}
    with _observability_call("query Workers Logs"):
        answer = session.client.workers.observability.telemetry.query(
            account_id=session.account_id,
            query_id=query_id,
            timeframe={"from": start_ms, "to": end_ms},
            view="events",
            limit=limit,
            parameters=parameters,  # type: ignore[arg-type]
        )
    if answer.events is None or not answer.events.events:
        return []
    return [event.model_dump(by_alias=True, exclude_none=True) for event in answer.events.events]


def open_live_tail(
    session: CloudflareSession, filters: Sequence[Filter], script: str | None = None
) -> str:
    """Prepare a live tail; the WebSocket address it streams on."""
    with _observability_call("start a Workers Logs live tail"):
        if script is None:
            answer = session.client.workers.observability.telemetry.live_tail(
                account_id=session.account_id,
                filters=list(filters),  # type: ignore[arg-type]
                filter_combination="and",
            )
        else:
            answer = session.client.workers.observability.telemetry.live_tail(
                account_id=session.account_id,
                filters=list(filters),  # type: ignore[arg-type]
                filter_combination="and",
                script_id=script,
            )
    return answer.ws_url


def heartbeat(session: CloudflareSession, script: str | None = None) -> None:
    """Tell the live tail the client is still there."""
    with _observability_call("send the Workers Logs live tail heartbeat"):
        if script is None:
            session.client.workers.observability.telemetry.live_tail_heartbeat(
                account_id=session.account_id
            )
        else:
            session.client.workers.observability.telemetry.live_tail_heartbeat(
                account_id=session.account_id, script_id=script
            )
