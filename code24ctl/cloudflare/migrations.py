"""Durable Object migrations: which classes a Worker implements, and the migration an upload
needs so that each of them exists in the namespace's copy."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.client import api_call
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

#: The migration tag of the first upload of a copy that defines Durable Object classes.
FIRST_MIGRATION_TAG = "code24ctl-v1"


def own_durable_object_classes(bindings: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The Durable Object classes a Worker implements itself: its bindings to a class with no
    ``script_name`` (a binding with one points at another Worker's class), sorted."""
    return tuple(
        sorted(
            str(b.get("class_name"))
            for b in bindings
            if b.get("type") == "durable_object_namespace" and not b.get("script_name")
        )
    )


def namespace_migration_tag(session: CloudflareSession, namespace: str, name: str) -> str | None:
    """The Durable Object migration tag of the namespace's ``name`` (None: no migration yet).

    As wrangler reads it before an upload (``getMigrationsToUpload``): ``script.migration_tag``
    of ``GET .../dispatch/namespaces/{ns}/scripts/{name}``.
    """
    scripts = session.client.workers_for_platforms.dispatch.namespaces.scripts
    with api_call(f"read the migration tag of Worker {name} in dispatch namespace {namespace}"):
        answer = scripts.get(name, account_id=session.account_id, dispatch_namespace=namespace)
    script = getattr(answer, "script", None)
    tag = getattr(script, "migration_tag", None)
    return tag if isinstance(tag, str) and tag else None


def class_migration(
    worker: str, classes: Sequence[str], existing: Sequence[str], tag: str | None
) -> dict[str, Any] | None:
    """The migration an upload of ``worker`` needs so that each of its own Durable Object
    ``classes`` exists: None when the copy already has them all (``existing``, its own class
    bindings), else ``{old_tag, new_tag, new_sqlite_classes}`` after the copy's ``tag``.

    Our tags count up (``code24ctl-v1``, ``-v2``, ...); after a tag of someone else's the next is
    ``code24ctl-v1``. Raises :class:`UsageError`, naming the classes, when the copy has classes
    but no migration tag: what its migrations created cannot be known, and a wrong ``old_tag``
    or a class created twice would be refused.
    """
    missing = [name for name in classes if name not in existing]
    if not missing:
        return None
    if tag is None:
        if existing:
            raise UsageError(
                f"Worker {worker} gains Durable Object class {', '.join(missing)}, but its copy "
                f"has classes ({', '.join(existing)}) and no migration tag: code24ctl cannot "
                "tell which migration to send",
                hint=f"apply a migration creating {', '.join(missing)} with wrangler "
                "(--dispatch-namespace), or delete the copy and bind again (its storage is lost)",
            )
        return {"new_tag": FIRST_MIGRATION_TAG, "new_sqlite_classes": missing}
    ours = re.fullmatch(r"code24ctl-v(\d+)", tag)
    new_tag = f"code24ctl-v{int(ours.group(1)) + 1}" if ours else FIRST_MIGRATION_TAG
    return {"old_tag": tag, "new_tag": new_tag, "new_sqlite_classes": missing}
