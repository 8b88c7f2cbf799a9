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
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.pacing import Pacer, RetryPolicy, sent_once
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
                delete_worker(api, namespace, name)
            except Code24Error as exc:
                if isinstance(exc, CloudflareAPIError) and is_not_found(exc, SCRIPT_NOT_FOUND):
                    return UnbindRow(alias=name, action="not-bound")
                return UnbindRow(alias=name, action="failed", failure=Failure.of(exc))
            return UnbindRow(alias=name, action="deleted")

        return run_all(one, wanted, checked_concurrency(concurrency))


def delete_worker(session: CloudflareSession, namespace: str, name: str) -> None:
    """Delete ``name`` from the namespace; a missing Worker raises (``SCRIPT_NOT_FOUND``).

    Sent once, not repeated by the transport: a repeat after a DELETE that was carried out but
    whose answer was lost meets "not found", which would report our own delete as a Worker
    that was never there. So a lost answer is read back (:func:`write_checked`): the Worker
    gone means this delete was carried out; still there, it is sent once more.
    """
    what = f"delete Worker {name} from dispatch namespace {namespace}"
    scripts = session.client.workers_for_platforms.dispatch.namespaces.scripts

    def delete() -> bool:
        with sent_once(), api_call(what):
            scripts.delete(name, account_id=session.account_id, dispatch_namespace=namespace)
        return True

    def gone() -> bool | None:
        try:
            with api_call(f"read Worker {name} in dispatch namespace {namespace}"):
                scripts.get(name, account_id=session.account_id, dispatch_namespace=namespace)
        except CloudflareAPIError as exc:
            if is_not_found(exc, SCRIPT_NOT_FOUND):
                return True
            raise
        return None

    # Only the DELETE is sent once; the read back is an ordinary read, retried as any.
    write_checked(what, delete, gone, shows="code24ctl workers")


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
