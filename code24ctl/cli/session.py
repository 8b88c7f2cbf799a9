"""Build the pieces a Cloudflare command needs, in one place: config, account, SDK client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from code24ctl.cli.state import GLOBAL
from code24ctl.cloudflare.client import Credentials, credentials_from_env, make_client
from code24ctl.constants import ACCOUNT_ENV_VAR
from code24ctl.errors import UsageError

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
    if require_env:
        resolved.require_cloudflare()
    credentials = credentials_from_env()
    account_id = resolved.account_id()
    return CloudflareSession(resolved, account_id, _client(credentials, bulk=bulk))


def _client(credentials: Credentials, *, bulk: bool) -> Cloudflare:
    """The SDK client every session uses: its own pacer, the session clock, the policy."""
    from code24ctl.cloudflare.pacing import (
        SYSTEM_CLOCK,
        Pacer,
        RetryPolicy,
        api_timeout_from_env,
        interactive_policy,
    )

    policy = api_timeout_from_env(RetryPolicy() if bulk else interactive_policy())
    clock = session_clock or SYSTEM_CLOCK
    return make_client(credentials, pacer=Pacer(clock=clock), policy=policy, clock=clock)


@dataclass(frozen=True)
class AccountSession:
    """An authenticated SDK client for an account, for commands that need no environment."""

    account_id: str
    client: Cloudflare


def account_session(config: str | None) -> AccountSession:
    """Credentials and account for account-level commands (``namespace list``, ``get NAME``).

    ``CLOUDFLARE_ACCOUNT_ID`` is enough: no config file is needed. Without it, the config's
    ``account_id`` is used when there is a config to read.
    """

    from code24ctl.config import ResolvedConfig, config_path_from, load_config

    credentials = credentials_from_env()
    path = config_path_from(config if config is not None else GLOBAL.config)
    if os.environ.get(ACCOUNT_ENV_VAR, "").strip() or Path(path).exists():
        loaded = load_config(path) if Path(path).exists() else None
        if loaded is not None:
            account_id = ResolvedConfig(path, "", loaded).account_id()
        else:
            account_id = _account_from_env()
    else:
        raise UsageError(
            f"no Cloudflare account id: {ACCOUNT_ENV_VAR} is not set and there is no {path}",
            hint=f"export {ACCOUNT_ENV_VAR}=<account id> (no config file is needed)",
        )
    return AccountSession(account_id, _client(credentials, bulk=False))


def _account_from_env() -> str:

    account = os.environ.get(ACCOUNT_ENV_VAR, "").strip()
    if not account.isalnum() or len(account) > 64:
        raise UsageError(
            f"account id {account!r} is not a Cloudflare account id (letters and digits)",
            hint=f"check {ACCOUNT_ENV_VAR}",
        )
    return account
