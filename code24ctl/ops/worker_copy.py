"""The copy of a Worker that ``bind`` uploads, and its upload.

:func:`managed_copy` adds code24ctl's tags, the Durable Object migration the copy needs
(:func:`copy_migration`) and the config's Workers Logs settings; :func:`upload_worker` sends
it, reading the migration tag back when a migration's answer is lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.migrations import (
    class_migration,
    namespace_migration_tag,
    own_durable_object_classes,
)
from code24ctl.cloudflare.modules import sdk_files
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.ownership import MANAGED_TAG_PREFIX, MAX_TAGS, managed_tags
from code24ctl.cloudflare.pacing import sent_once
from code24ctl.cloudflare.worker_code import (
    DeployedWorker,
    WorkerCode,
    read_namespace_worker,
)
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig


def managed_copy(
    code: WorkerCode,
    resolved: ResolvedConfig,
    alias: str,
    *,
    migrations: Mapping[str, Any] | None = None,
) -> WorkerCode:
    """``code`` as code24ctl uploads it: its own tags plus the managed ones, and the
    ``migrations`` (from :func:`copy_migration`) that create the Durable Object classes the copy
    lacks, and the config's ``observability`` (Workers Logs) for the alias. Raises
    :class:`UsageError` when the tags would pass the limit of eight.
    """
    own = [tag for tag in code.tags if not tag.startswith(MANAGED_TAG_PREFIX)]
    tags = own + managed_tags(resolved, f"alias:{alias}")
    if len(tags) > MAX_TAGS:
        raise UsageError(
            f"{code.source} has {len(own)} tags; with code24ctl's 3 the copy would have "
            f"{len(tags)}, over Cloudflare's limit of {MAX_TAGS}",
            hint=f"remove tags from the source Worker: {', '.join(own)}",
        )
    settings = dict(code.settings)
    observability = resolved.config.observability_of(alias)
    if observability is not None:
        # The config's Workers Logs keys win over the source's (so `logs` finds the copy's lines
        # whatever the source Worker has); the source's other keys (logs, traces) stay.
        source = settings.get("observability")
        kept = dict(source) if isinstance(source, Mapping) else {}
        settings["observability"] = kept | observability.model_dump()
    return dataclasses.replace(code, tags=tuple(tags), migrations=migrations, settings=settings)


def copy_migration(
    session: CloudflareSession,
    namespace: str,
    alias: str,
    code: WorkerCode,
    deployed: DeployedWorker | None,
) -> dict[str, Any] | None:
    """The migration the copy's upload needs (:func:`class_migration`): on a first upload, one
    creating every class the Worker implements; on an update, one creating the classes the copy
    does not have yet, after the copy's migration tag (read only then, as wrangler does).

    The classes are created as SQLite-backed (``new_sqlite_classes``): the settings answer does
    not say which backend the source used, a copy starts with empty storage either way, and a
    SQLite-backed class offers every storage API a key-value one does (plus SQL), so code written
    for either runs.
    """
    if deployed is None:
        return class_migration(alias, code.durable_object_classes, (), None)
    existing = own_durable_object_classes(deployed.bindings)
    if set(code.durable_object_classes) <= set(existing):
        return None
    tag = namespace_migration_tag(session, namespace, alias)
    return class_migration(alias, code.durable_object_classes, existing, tag)


def read_deployed(session: CloudflareSession, namespace: str, alias: str) -> DeployedWorker | None:
    try:
        return read_namespace_worker(session, namespace, alias)
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return None  # deleted since we listed the namespace: a create
        raise


def upload_worker(session: CloudflareSession, namespace: str, name: str, code: WorkerCode) -> None:
    """Upload ``code`` into the namespace as ``name`` (multipart: metadata + one part a module).

    The metadata keeps secret bindings already set on the namespace's copy (``keep_bindings``),
    so a re-bind never wipes what ``code24ctl secret put`` set.

    An upload without a migration is safe to repeat (the transport does). One that carries a
    Durable Object migration is not: sent again after it was applied, its ``old_tag`` no
    longer matches and it is refused. So it is sent once, and when its answer is lost the
    copy's migration tag is read back (:func:`write_checked`): the new tag means it landed.
    """
    what = f"upload Worker {name} to dispatch namespace {namespace}"

    def upload() -> bool:
        with api_call(what):
            session.client.workers_for_platforms.dispatch.namespaces.scripts.update(
                name,
                account_id=session.account_id,
                dispatch_namespace=namespace,
                metadata=code.metadata(),  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
                files=sdk_files(code.modules),
            )
        return True

    new_tag = (code.migrations or {}).get("new_tag")
    if not new_tag:
        upload()
        return

    def landed() -> bool | None:
        try:
            tag = namespace_migration_tag(session, namespace, name)
        except CloudflareAPIError as exc:
            if is_not_found(exc, SCRIPT_NOT_FOUND):
                return None  # a first upload that did not land
            raise
        return True if tag == new_tag else None

    with sent_once():
        write_checked(
            f"{what} (migration {new_tag})",
            upload,
            landed,
            shows="code24ctl workers",
        )
