"""Build the pieces a Cloudflare command needs, in one place: config, account, SDK client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import credentials_from_env, make_client

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.cloudflare.pacing import Clock
    from code24ctl.config import ResolvedConfig


@dataclass(frozen=True)
class CloudflareSession:
    """The resolved config plus an authenticated SDK client for its account."""

    resolved: ResolvedConfig
    account_id: str
    client: Cloudflare


#: The clock every session's pacer and transport use; tests swap in a fake one so that
#: retries and backoff cost no real time.
session_clock: Clock | None = None


def cloudflare_session(
    resolved: ResolvedConfig, *, require_env: bool = True, bulk: bool = False
) -> CloudflareSession:
    """Credentials from the environment, account from env/config, and the real SDK client.

    Every call goes through the paced transport (the 1,200 per 5 minutes and 200 per second
    budgets, the API's rate-limit headers, ``Retry-After``, visible retries, a deadline per
    call). ``bulk`` commands (bind, unbind, workers, secret, apply) retry as long as bulk work
    needs; the others give up after a few tries. ``CODE24_API_TIMEOUT`` bounds one call.
    ``require_env`` refuses local environments for commands that act on the env's resources.
    """
    from code24ctl.cloudflare.pacing import (
        SYSTEM_CLOCK,
        Pacer,
        RetryPolicy,
        api_timeout_from_env,
        interactive_policy,
    )

    if require_env:
        resolved.require_cloudflare()
    credentials = credentials_from_env()
    account_id = resolved.account_id()
    policy = api_timeout_from_env(RetryPolicy() if bulk else interactive_policy())
    clock = session_clock or SYSTEM_CLOCK
    client = make_client(credentials, pacer=Pacer(clock=clock), policy=policy, clock=clock)
    return CloudflareSession(resolved, account_id, client)
