"""Build the pieces a Cloudflare command needs, in one place: config, account, SDK client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import credentials_from_env, make_client

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.config import ResolvedConfig


@dataclass(frozen=True)
class CloudflareSession:
    """The resolved config plus an authenticated SDK client for its account."""

    resolved: ResolvedConfig
    account_id: str
    client: Cloudflare


def cloudflare_session(
    resolved: ResolvedConfig, *, require_env: bool = True, bulk: bool = False
) -> CloudflareSession:
    """Credentials from the environment, account from env/config, and the real SDK client.

    Every call goes through the API pacer (the 1,200 per 5 minutes budget, ``Retry-After``,
    visible retries). ``bulk`` commands (bind, unbind, workers, secret, apply) retry as long as
    bulk work needs; the others give up after a few tries. ``require_env`` refuses local
    environments for commands that act on the env's resources.
    """
    from code24ctl.cloudflare.pacing import interactive_policy, paced_client

    if require_env:
        resolved.require_cloudflare()
    credentials = credentials_from_env()
    account_id = resolved.account_id()
    policy = None if bulk else interactive_policy()
    return CloudflareSession(
        resolved, account_id, paced_client(make_client(credentials), policy=policy)
    )
