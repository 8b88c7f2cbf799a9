"""Dispatch namespace operations: create, list, get, delete, and the Workers inside one.

Functions take an SDK client (built by :mod:`code24ctl.cloudflare.client`) and return pydantic
models; API failures arrive as :class:`~code24ctl.errors.CloudflareAPIError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from code24ctl.cloudflare.client import NAMESPACE_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.config import check_names
from code24ctl.errors import CloudflareAPIError
from code24ctl.names import closest, suggestion

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

SCRIPTS_PAGE_SIZE = 100
#: A hard cap on a namespace listing (a hundred thousand Workers): a server that hands out a
#: fresh cursor for ever is stopped, not followed.
MAX_CURSOR_PAGES = 1000


class NamespaceInfo(BaseModel):
    """One dispatch namespace as the API describes it."""

    name: str
    id: str | None = None
    script_count: int | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None
    trusted_workers: bool | None = None


class CreateResult(BaseModel):
    """The outcome of ``namespace create``: the namespace, and whether this call made it."""

    namespace: NamespaceInfo
    created: bool


class DeleteResult(BaseModel):
    """The outcome of ``namespace delete``."""

    deleted: bool
    namespace: NamespaceInfo


class NamespaceScript(BaseModel):
    """A user Worker inside a dispatch namespace."""

    id: str
    created_on: datetime | None = None
    modified_on: datetime | None = None
    tags: list[str] = []


def _info(raw: Any) -> NamespaceInfo:
    return NamespaceInfo(
        name=raw.namespace_name or "",
        id=raw.namespace_id,
        script_count=raw.script_count,
        created_on=raw.created_on,
        modified_on=raw.modified_on,
        trusted_workers=raw.trusted_workers,
    )


def namespace_missing(name: str, env_name: str | None = None, why: str = "") -> CloudflareAPIError:
    """The error for a dispatch namespace that does not exist, with the command that fixes it.

    ``env_name`` makes the fix name the environment, so following it creates the right one.
    """
    env = f" --env {env_name}" if env_name else f" {name}"
    return CloudflareAPIError(
        f"dispatch namespace {name} does not exist on this account{why} "
        f"(Cloudflare API error {NAMESPACE_NOT_FOUND})",
        code=NAMESPACE_NOT_FOUND,
        hint=f"run `code24ctl namespace create{env}` first"
        + (f" (or `code24ctl apply --env {env_name}` for every step)" if env_name else ""),
    )


def require_namespace(
    session: CloudflareSession, name: str, env_name: str | None = None, why: str = ""
) -> NamespaceInfo:
    """The namespace, or exit 3 naming the fix (a pre-flight: fail once, not per upload)."""
    found = find_namespace(session, name)
    if found is None:
        near = nearest_namespace(session, name)
        if near is not None:
            raise CloudflareAPIError(
                f"dispatch namespace {name} does not exist on this account{why}"
                f"{suggestion(near)} (Cloudflare API error {NAMESPACE_NOT_FOUND})",
                code=NAMESPACE_NOT_FOUND,
                hint="`code24ctl namespace list` shows the namespaces this account has",
            )
        raise namespace_missing(name, env_name, why)
    return found


def nearest_namespace(session: CloudflareSession, name: str) -> str | None:
    """The account's namespace name closest to ``name`` (a likely typo), if any."""

    try:
        names = [ns.name for ns in list_namespaces(session)]
    except CloudflareAPIError:
        return None  # the suggestion is a courtesy; the missing namespace is the error
    return closest(name, names)


def list_namespaces(session: CloudflareSession) -> list[NamespaceInfo]:
    """Every dispatch namespace on the account, sorted by name."""
    with api_call("list dispatch namespaces"):
        found = [
            _info(raw)
            for raw in session.client.workers_for_platforms.dispatch.namespaces.list(
                account_id=session.account_id
            )
        ]
    return sorted(found, key=lambda ns: ns.name)


def find_namespace(session: CloudflareSession, name: str) -> NamespaceInfo | None:
    """The namespace called ``name``, or None when the account has none by that name."""
    try:
        return get_namespace(session, name)
    except CloudflareAPIError as exc:
        if is_not_found(exc, NAMESPACE_NOT_FOUND):
            return None
        raise


def get_namespace(session: CloudflareSession, name: str) -> NamespaceInfo:
    """One namespace's details; a missing one is a CloudflareAPIError with code 100119."""
    with api_call(f"get dispatch namespace {name}"):
        raw = session.client.workers_for_platforms.dispatch.namespaces.get(
            name, account_id=session.account_id
        )
    if raw is None:
        raise CloudflareAPIError(
            f"get dispatch namespace {name}: the API returned no namespace",
            code=NAMESPACE_NOT_FOUND,
        )
    return _info(raw)


def check_namespace_name(name: str) -> str:
    """Refuse a name the API would reject (or that would change the request path)."""
    return check_names([name], "dispatch namespace name")[0]


def namespace_for_delete(session: CloudflareSession, name: str) -> NamespaceInfo:
    """The namespace about to be deleted; a missing one says there is nothing to delete."""
    check_namespace_name(name)
    try:
        return get_namespace(session, name)
    except CloudflareAPIError as exc:
        if exc.code == NAMESPACE_NOT_FOUND:
            near = nearest_namespace(session, name)
            raise CloudflareAPIError(
                f"dispatch namespace {name} does not exist on this account: nothing to delete"
                f"{suggestion(near)} (Cloudflare API error {NAMESPACE_NOT_FOUND})",
                code=exc.code,
                status=exc.status,
                hint="`code24ctl namespace list` shows the namespaces this account has",
            ) from None
        raise


def create_namespace(session: CloudflareSession, name: str) -> CreateResult:
    """Create the namespace; one that already exists is success (``created=False``)."""
    existing = find_namespace(session, name)
    if existing is not None:
        return CreateResult(namespace=existing, created=False)

    def create() -> CreateResult:
        with api_call(f"create dispatch namespace {name}"):
            raw = session.client.workers_for_platforms.dispatch.namespaces.create(
                account_id=session.account_id, name=name
            )
        if raw is None or not raw.namespace_name:
            return CreateResult(namespace=get_namespace(session, name), created=True)
        return CreateResult(namespace=_info(raw), created=True)

    def read_back() -> CreateResult | None:
        found = find_namespace(session, name)
        return CreateResult(namespace=found, created=True) if found is not None else None

    try:
        return write_checked(
            f"create dispatch namespace {name}",
            create,
            read_back,
            shows="code24ctl namespace list",
        )
    except CloudflareAPIError as exc:
        if exc.unknown_outcome:
            raise
        # Someone may have created it between our look and our create: that is still success.
        raced = find_namespace(session, name)
        if raced is not None:
            return CreateResult(namespace=raced, created=False)
        raise


def delete_namespace(session: CloudflareSession, name: str) -> None:
    """Delete the namespace and, with it, every Worker it holds."""
    with api_call(f"delete dispatch namespace {name}"):
        session.client.workers_for_platforms.dispatch.namespaces.delete(
            name, account_id=session.account_id
        )


def iter_namespace_scripts(
    session: CloudflareSession, namespace: str, env_name: str | None = None
) -> Iterator[NamespaceScript]:
    """The Workers in a namespace, page by page.

    The SDK has no method for this listing, so it is a raw ``GET`` through the SDK client
    (same auth, retries and base URL). The docs (workers-for-platforms configuration/tags)
    document ``limit`` and ``cursor`` but not where the next cursor comes back: this follows
    ``result_info.cursor`` (the v4 convention of the SDK's cursor pagination and of wrangler's
    list helper) and ``result_info.cursors.after``. A full page whose ``result_info`` has no
    cursor field at all, or a cursor that repeats, cannot be told apart from a truncated
    listing, so it raises instead of reporting part of the namespace as all of it.
    """
    path = f"/accounts/{session.account_id}/workers/dispatch/namespaces/{namespace}/scripts"
    what = f"list Workers in dispatch namespace {namespace}"
    cursor: str | None = None
    seen: set[str] = set()
    for number in range(1, MAX_CURSOR_PAGES + 1):
        query: dict[str, Any] = {"limit": SCRIPTS_PAGE_SIZE}
        if cursor:
            query["cursor"] = cursor
        try:
            with api_call(f"list Workers in dispatch namespace {namespace}"):
                envelope = session.client.get(path, cast_to=object, options={"params": query})
        except CloudflareAPIError as exc:
            if exc.code == NAMESPACE_NOT_FOUND:
                raise namespace_missing(namespace, env_name) from None
            raise
        result, info = _unwrap(envelope)
        for item in result:
            script = _script_item(item)
            if script is not None:
                yield script
        session.page_read(what, number)
        cursor = _next_cursor(info)
        if cursor and cursor in seen:
            raise CloudflareAPIError(
                f"list Workers in dispatch namespace {namespace}: the API repeated cursor "
                f"{cursor!r}; the listing would never end",
            )
        if not cursor or not result:
            per_page = info.get("per_page")
            page_size = per_page if isinstance(per_page, int) and per_page > 0 else None
            full = len(result) >= min(SCRIPTS_PAGE_SIZE, page_size or SCRIPTS_PAGE_SIZE)
            # An empty cursor is the API saying "last page"; no cursor field at all is paging
            # this code does not understand.
            said_last = "cursor" in info or "cursors" in info
            if result and full and not said_last:
                raise CloudflareAPIError(
                    f"list Workers in dispatch namespace {namespace}: a full page of "
                    f"{len(result)} came back without a cursor for the next one; refusing to "
                    "report a listing that may be cut short",
                    hint="the API's paging may have changed; please report this with -v output",
                )
            return
        seen.add(cursor)
    raise CloudflareAPIError(
        f"{what}: more than {MAX_CURSOR_PAGES} pages of {SCRIPTS_PAGE_SIZE}; stopped "
        "(is the API paging correctly?)",
        hint="retry later; if it persists, check CLOUDFLARE_BASE_URL",
    )


def _next_cursor(info: dict[str, Any]) -> str | None:
    cursor = info.get("cursor")
    if not cursor:
        cursors = info.get("cursors")
        cursor = cursors.get("after") if isinstance(cursors, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


def _script_item(item: Any) -> NamespaceScript | None:
    """One listed Worker: flat ``{id, ...}``, or ``{created_on, modified_on, script: {id,
    tags, ...}}`` as the SDK types the namespace script answer."""
    if not isinstance(item, dict):
        return None
    nested = item.get("script")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else item
    name = inner.get("id")
    if not isinstance(name, str) or not name:
        return None
    tags = inner.get("tags") or item.get("tags") or []
    return NamespaceScript.model_validate(
        {
            "id": name,
            "created_on": item.get("created_on") or inner.get("created_on"),
            "modified_on": item.get("modified_on") or inner.get("modified_on"),
            "tags": [tag for tag in tags if isinstance(tag, str)],
        }
    )


def list_namespace_scripts(
    session: CloudflareSession, namespace: str, env_name: str | None = None
) -> list[NamespaceScript]:
    """Every Worker in a namespace (all pages)."""
    return list(iter_namespace_scripts(session, namespace, env_name))


def _unwrap(envelope: object) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(envelope, dict):
        return [], {}
    result = envelope.get("result") or []
    info = envelope.get("result_info") or {}
    return (result if isinstance(result, list) else []), (info if isinstance(info, dict) else {})
