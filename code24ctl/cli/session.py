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
    import os
    from pathlib import Path

    from code24ctl.cli.state import GLOBAL
    from code24ctl.cloudflare.pacing import interactive_policy, paced_client
    from code24ctl.config import ResolvedConfig, config_path_from, load_config
    from code24ctl.constants import ACCOUNT_ENV_VAR
    from code24ctl.errors import UsageError

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
    client = paced_client(make_client(credentials), policy=interactive_policy())
    return AccountSession(account_id, client)


def _account_from_env() -> str:
    import os

    from code24ctl.constants import ACCOUNT_ENV_VAR
    from code24ctl.errors import UsageError

    account = os.environ.get(ACCOUNT_ENV_VAR, "").strip()
    if not account.isalnum() or len(account) > 64:
        raise UsageError(
            f"account id {account!r} is not a Cloudflare account id (letters and digits)",
            hint=f"check {ACCOUNT_ENV_VAR}",
        )
    return account
