"""Build the pieces a Cloudflare command needs, in one place: config, account, SDK client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.cloudflare_api import credentials_from_env, make_client

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.config import ResolvedConfig


@dataclass(frozen=True)
class CloudflareSession:
    """The resolved config plus an authenticated SDK client for its account."""

    resolved: ResolvedConfig
    account_id: str
    client: Cloudflare


def cloudflare_session(resolved: ResolvedConfig, *, require_env: bool = True) -> CloudflareSession:
    """Credentials from the environment, account from env/config, and the real SDK client.

    ``require_env`` refuses local environments for commands that act on the env's resources.
    """
    if require_env:
        resolved.require_cloudflare()
    credentials = credentials_from_env()
    account_id = resolved.account_id()
    return CloudflareSession(resolved, account_id, make_client(credentials))
