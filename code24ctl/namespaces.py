"""Dispatch namespace operations: create, list, get, delete, and the Workers inside one.

Functions take an SDK client (built by :mod:`code24ctl.cloudflare_api`) and return pydantic
models; API failures arrive as :class:`~code24ctl.errors.CloudflareAPIError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from code24ctl.cloudflare_api import NAMESPACE_NOT_FOUND, api_call
from code24ctl.errors import CloudflareAPIError

if TYPE_CHECKING:
    from cloudflare import Cloudflare

SCRIPTS_PAGE_SIZE = 100


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


def _info(raw: Any) -> NamespaceInfo:
    return NamespaceInfo(
        name=raw.namespace_name or "",
        id=raw.namespace_id,
        script_count=raw.script_count,
        created_on=raw.created_on,
        modified_on=raw.modified_on,
        trusted_workers=raw.trusted_workers,
    )


def list_namespaces(client: Cloudflare, account_id: str) -> list[NamespaceInfo]:
    """Every dispatch namespace on the account, sorted by name."""
    with api_call("list dispatch namespaces"):
        found = [
            _info(raw)
            for raw in client.workers_for_platforms.dispatch.namespaces.list(account_id=account_id)
        ]
    return sorted(found, key=lambda ns: ns.name)


def find_namespace(client: Cloudflare, account_id: str, name: str) -> NamespaceInfo | None:
    """The namespace called ``name``, or None when the account has none by that name."""
    try:
        return get_namespace(client, account_id, name)
    except CloudflareAPIError as exc:
        if exc.code == NAMESPACE_NOT_FOUND or exc.status == 404:
            return None
        raise


def get_namespace(client: Cloudflare, account_id: str, name: str) -> NamespaceInfo:
    """One namespace's details; a missing one is a CloudflareAPIError with code 100119."""
    with api_call(f"get dispatch namespace {name}"):
        raw = client.workers_for_platforms.dispatch.namespaces.get(name, account_id=account_id)
    if raw is None:
        raise CloudflareAPIError(
            f"get dispatch namespace {name}: the API returned no namespace",
            code=NAMESPACE_NOT_FOUND,
        )
    return _info(raw)


def create_namespace(client: Cloudflare, account_id: str, name: str) -> CreateResult:
    """Create the namespace; one that already exists is success (``created=False``)."""
    existing = find_namespace(client, account_id, name)
    if existing is not None:
        return CreateResult(namespace=existing, created=False)
    try:
        with api_call(f"create dispatch namespace {name}"):
            raw = client.workers_for_platforms.dispatch.namespaces.create(
                account_id=account_id, name=name
            )
    except CloudflareAPIError:
        # Someone may have created it between our look and our create: that is still success.
        raced = find_namespace(client, account_id, name)
        if raced is not None:
            return CreateResult(namespace=raced, created=False)
        raise
    if raw is None or not raw.namespace_name:
        return CreateResult(namespace=get_namespace(client, account_id, name), created=True)
    return CreateResult(namespace=_info(raw), created=True)


def delete_namespace(client: Cloudflare, account_id: str, name: str) -> None:
    """Delete the namespace and, with it, every Worker it holds."""
    with api_call(f"delete dispatch namespace {name}"):
        client.workers_for_platforms.dispatch.namespaces.delete(name, account_id=account_id)


def iter_namespace_scripts(
    client: Cloudflare, account_id: str, namespace: str
) -> Iterator[NamespaceScript]:
    """The Workers in a namespace, page by page.

    The SDK has no method for this listing, so it is a raw ``GET`` through the SDK client
    (same auth, retries and base URL), following ``result_info.cursor``.
    """
    path = f"/accounts/{account_id}/workers/dispatch/namespaces/{namespace}/scripts"
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": SCRIPTS_PAGE_SIZE}
        if cursor:
            query["cursor"] = cursor
        with api_call(f"list Workers in dispatch namespace {namespace}"):
            envelope = client.get(path, cast_to=object, options={"params": query})
        result, info = _unwrap(envelope)
        for item in result:
            if isinstance(item, dict) and item.get("id"):
                yield NamespaceScript.model_validate(
                    {k: item.get(k) for k in ("id", "created_on", "modified_on")}
                )
        cursor = info.get("cursor") if isinstance(info, dict) else None
        if not cursor or not result:
            return


def list_namespace_scripts(
    client: Cloudflare, account_id: str, namespace: str
) -> list[NamespaceScript]:
    """Every Worker in a namespace (all pages)."""
    return list(iter_namespace_scripts(client, account_id, namespace))


def _unwrap(envelope: object) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(envelope, dict):
        return [], {}
    result = envelope.get("result") or []
    info = envelope.get("result_info") or {}
    return (result if isinstance(result, list) else []), (info if isinstance(info, dict) else {})
