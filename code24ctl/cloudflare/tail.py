"""Tail sessions on a Worker: ``POST .../workers/scripts/{name}/tails`` opens one (its ``url`` is a
WebSocket speaking ``trace-v1``), ``DELETE .../tails/{id}`` ends it. Wrangler's ``tail`` does the
same; the events themselves are read in :mod:`code24ctl.ops.tail`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import api_call
from code24ctl.errors import CloudflareAPIError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


@dataclass(frozen=True)
class TailSession:
    """An open tail: its id, WebSocket address and expiry (as the API wrote it)."""

    id: str
    url: str
    expires_at: str
    script: str


def open_tail(session: CloudflareSession, script: str) -> TailSession:
    """Start a tail on ``script``. No server-side filters: code24ctl filters what it shows."""
    with api_call(f"start a tail on {script}"):
        created = session.client.workers.scripts.tail.create(
            script, account_id=session.account_id, extra_body={"filters": []}
        )
    return TailSession(
        id=created.id, url=created.url, expires_at=str(created.expires_at), script=script
    )


def close_tail(session: CloudflareSession, tail: TailSession) -> bool:
    """Delete the tail; ``False`` when it was already gone (expired or deleted)."""
    try:
        with api_call(f"delete tail {tail.id} on {tail.script}"):
            session.client.workers.scripts.tail.delete(
                tail.id, account_id=session.account_id, script_name=tail.script
            )
    except CloudflareAPIError as exc:
        if exc.status == 404:
            return False
        raise
    return True
