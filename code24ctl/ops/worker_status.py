"""Which configured Workers the namespace holds (``code24ctl workers``, ``unbind --stale``).

:func:`worker_status` compares configured aliases with the namespace's contents
(:class:`WorkerStatusRow`: ``bound`` / ``missing`` / ``stale`` / ``not-in-config``);
:func:`stale_workers` names the Workers code24ctl wrote that the config no longer names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.namespaces import (
    NamespaceScript,
    list_namespace_scripts,
)
from code24ctl.cloudflare.ownership import managed_alias
from code24ctl.cloudflare.pacing import Pacer, RetryPolicy

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig


WorkerState = Literal["bound", "missing", "stale", "not-in-config"]


class WorkerStatusRow(BaseModel):
    """One alias in ``code24ctl workers``: configured and/or present in the namespace."""

    alias: str
    status: WorkerState
    source: str | None = None  # where the config takes its code from (None: not configured)
    modified_on: datetime | None = None  # when the namespace's copy last changed


def worker_status(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> list[WorkerStatusRow]:
    """Configured aliases against the namespace: ``bound`` / ``missing``, then the namespace's
    other Workers (sorted by name): ``stale`` when their tags say code24ctl wrote them for this
    platform and environment (the config no longer names them), else ``not-in-config``.

    One paged listing; a missing namespace raises :class:`CloudflareAPIError` (code 100119).
    """
    namespace = resolved.namespace()
    with session.paced(pacer, policy) as api:
        listing = list_namespace_scripts(api, namespace, resolved.env_name)
        scripts = {s.id: s for s in listing}
    rows: list[WorkerStatusRow] = []
    for alias, worker in resolved.config.workers.items():
        held = scripts.get(alias)
        rows.append(
            WorkerStatusRow(
                alias=alias,
                status="bound" if held else "missing",
                source=worker.source,
                modified_on=held.modified_on if held else None,
            )
        )
    stale = set(_stale(listing, resolved))
    for name in sorted(set(scripts) - set(resolved.config.workers)):
        rows.append(
            WorkerStatusRow(
                alias=name,
                status="stale" if name in stale else "not-in-config",
                modified_on=scripts[name].modified_on,
            )
        )
    return rows


def stale_workers(listing: Sequence[NamespaceScript], resolved: ResolvedConfig) -> list[str]:
    """The Workers of a namespace listing that code24ctl wrote for this platform and
    environment (their tags say so) but the config no longer names, sorted."""
    return sorted(_stale(listing, resolved))


def _stale(listing: Sequence[NamespaceScript], resolved: ResolvedConfig) -> Iterator[str]:
    configured = set(resolved.config.workers)
    for script in listing:
        if script.id not in configured and managed_alias(script.tags, resolved) is not None:
            yield script.id
