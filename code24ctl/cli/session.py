"""Build the Cloudflare session a command needs, in one place: credentials, account, client.

The session's clock is the invocation's (:class:`~code24ctl.cli.invocation.Invocation`), so
tests that run the CLI in-process pass a fake one and no retry waits for real.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from code24ctl.cli.invocation import invocation
from code24ctl.cloudflare.client import Credentials, credentials_from_env
from code24ctl.constants import ACCOUNT_ENV_VAR
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession, PageListener
    from code24ctl.config import ResolvedConfig


def cloudflare_session(
    resolved: ResolvedConfig,
    *,
    require_env: bool = True,
    bulk: bool = False,
    pages: PageListener | None = None,
) -> CloudflareSession:
    """Credentials from the environment, account from env/config, and the real SDK client.

    Every call goes through the paced transport (the 1,200 per 5 minutes and 200 per second
    budgets, the API's rate-limit headers, ``Retry-After``, visible retries, a deadline per
    call). ``bulk`` commands (bind, unbind, workers, secret, apply) retry as long as bulk work
    needs; the others give up after a few tries. ``CODE24_API_TIMEOUT`` bounds one call.
    ``require_env`` refuses local environments for commands that act on the env's resources.
    ``pages`` hears of each page a long listing reads.
    """
    if require_env:
        resolved.require_cloudflare()
    credentials = credentials_from_env()
    account_id = resolved.account_id()
    return _open(credentials, account_id, bulk=bulk, pages=pages)


def _open(
    credentials: Credentials, account_id: str, *, bulk: bool, pages: PageListener | None = None
) -> CloudflareSession:
    """The session every command uses: its own pacer, the invocation's clock, the policy."""
    from code24ctl.cloudflare.pacing import (
        SYSTEM_CLOCK,
        RetryPolicy,
        api_timeout_from_env,
        interactive_policy,
    )
    from code24ctl.cloudflare.session import open_session

    policy = api_timeout_from_env(RetryPolicy() if bulk else interactive_policy())
    clock = invocation().clock or SYSTEM_CLOCK
    return open_session(credentials, account_id, policy=policy, clock=clock, pages=pages)


def account_session(config: str | None) -> CloudflareSession:
    """Credentials and account for account-level commands (``namespace list``, ``get NAME``).

    ``CLOUDFLARE_ACCOUNT_ID`` is enough: no config file is needed. Without it, the config's
    ``account_id`` is used when there is a config to read.
    """
    from code24ctl.config import ResolvedConfig, config_path_from, load_config

    credentials = credentials_from_env()
    path = config_path_from(config if config is not None else invocation().config)
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
    return _open(credentials, account_id, bulk=False)


def _account_from_env() -> str:
    account = os.environ.get(ACCOUNT_ENV_VAR, "").strip()
    if not account.isalnum() or len(account) > 64:
        raise UsageError(
            f"account id {account!r} is not a Cloudflare account id (letters and digits)",
            hint=f"check {ACCOUNT_ENV_VAR}",
        )
    return account
