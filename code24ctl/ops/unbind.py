"""Take Workers out of the dispatch namespace (``code24ctl unbind``).

:func:`unbind_workers` deletes each name (an :class:`UnbindRow` each; one failure never stops
the others); :func:`bound_names` lists what the namespace holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.namespaces import (
    list_namespace_scripts,
)
from code24ctl.cloudflare.pacing import Pacer, RetryPolicy
from code24ctl.config import check_names
from code24ctl.errors import Change, CloudflareAPIError, Code24Error, Failure
from code24ctl.ops.failures import HoldsFailure
from code24ctl.ops.pool import DEFAULT_CONCURRENCY, checked_concurrency, run_all

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


UnbindAction = Literal["deleted", "not-bound", "failed", "would-delete"]


class UnbindRow(HoldsFailure):
    """The outcome of removing one Worker from the namespace (a ``failed`` one holds its
    :class:`Failure`, printed as ``error``, ``code`` and ``hint``)."""

    failure_after: ClassVar[str] = "action"

    alias: str
    action: UnbindAction


def unbind_workers(
    session: CloudflareSession,
    namespace: str,
    names: Sequence[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    present: set[str] | None = None,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> list[UnbindRow]:
    """Delete ``names`` from the namespace (one row each; a failure never stops the others).

    ``present`` (from :func:`bound_names`) saves listing the namespace again; names not in it
    are ``not-bound`` and not deleted.
    """
    wanted = list(dict.fromkeys(check_worker_names(names)))
    with session.paced(pacer, policy) as api:
        there = present if present is not None else bound_names(api, namespace)

        def one(name: str) -> UnbindRow:
            if name not in there:
                return UnbindRow(alias=name, action="not-bound")
            if dry_run:
                return UnbindRow(alias=name, action="would-delete")
            try:
                with api_call(f"delete Worker {name} from dispatch namespace {namespace}"):
                    api.client.workers_for_platforms.dispatch.namespaces.scripts.delete(
                        name, account_id=api.account_id, dispatch_namespace=namespace
                    )
            except Code24Error as exc:
                if isinstance(exc, CloudflareAPIError) and is_not_found(exc, SCRIPT_NOT_FOUND):
                    return UnbindRow(alias=name, action="not-bound")
                return UnbindRow(alias=name, action="failed", failure=Failure.of(exc))
            return UnbindRow(alias=name, action="deleted")

        return run_all(one, wanted, checked_concurrency(concurrency))


def deletions(rows: Sequence[UnbindRow]) -> tuple[Change, ...]:
    """Each Worker an unbind deleted, as a :class:`Change` (what a failed run had done)."""
    return tuple(Change("worker", row.alias, "deleted") for row in rows if row.action == "deleted")


def check_worker_names(names: Sequence[str]) -> list[str]:
    """Refuse (exit 2) names that cannot be Worker names, before any API call."""
    return check_names(names, "Worker name")


def bound_names(
    session: CloudflareSession, namespace: str, env_name: str | None = None
) -> set[str]:
    """The names of the Workers the namespace holds (all pages)."""
    listing = list_namespace_scripts(session, namespace, env_name)
    return {script.id for script in listing}
