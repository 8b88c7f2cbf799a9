"""One environment of the config: ``{env}`` expanded, with the accessors commands use (the
account, the namespace, the dispatcher) and the refusals that name where a value came from."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from code24ctl.config.models import ACCOUNT_ID_RE, Config, EnvironmentConfig
from code24ctl.constants import ACCOUNT_ENV_VAR
from code24ctl.errors import UsageError


@dataclass(frozen=True)
class ResolvedConfig:
    """The config with ``{env}`` expanded for one environment, plus where it came from."""

    path: str
    env_name: str
    config: Config
    # Where env_name came from: "--env", "CODE24_ENV", "default_env in PATH", ...
    env_origin: str = "--env"

    @property
    def environment(self) -> EnvironmentConfig:
        """The chosen environment's settings."""
        return self.config.environments[self.env_name]

    @property
    def is_local(self) -> bool:
        return self.environment.is_local

    def account_id(self) -> str:
        """The Cloudflare account: ``CLOUDFLARE_ACCOUNT_ID`` wins over the config's value."""
        account = (os.environ.get(ACCOUNT_ENV_VAR) or self.config.account_id or "").strip()
        if account and not ACCOUNT_ID_RE.match(account):
            # It becomes part of every API path: never let it change the path.
            raise UsageError(
                f"account id {account!r} is not a Cloudflare account id (letters and digits)",
                hint=f"check {ACCOUNT_ENV_VAR} or account_id in {self.path}",
            )
        if not account:
            variable = self.config.unset_variable("account_id")
            if variable is not None and variable != ACCOUNT_ENV_VAR:
                raise UsageError(
                    f"no Cloudflare account id: account_id in {self.path} is ${{{variable}}}, "
                    f"and neither {variable} nor {ACCOUNT_ENV_VAR} is set",
                    hint=f"export {variable}=<account id> (or {ACCOUNT_ENV_VAR})",
                )
            if variable is not None:
                raise UsageError(
                    f"no Cloudflare account id: account_id in {self.path} is "
                    f"${{{ACCOUNT_ENV_VAR}}}, which is not set",
                    hint=f"export {ACCOUNT_ENV_VAR}=<account id>",
                )
            raise UsageError(
                f"no Cloudflare account id: {ACCOUNT_ENV_VAR} is not set and the config has none",
                hint=f"export {ACCOUNT_ENV_VAR}=<account id> or set account_id in {self.path}",
            )
        return account

    def require_cloudflare(self) -> EnvironmentConfig:
        """The environment, refusing local ones for commands that talk to Cloudflare."""
        if self.is_local:
            raise UsageError(
                f"environment {self.env_name!r} (from {self.env_origin}) is local (it has "
                "upstreams); "
                "this command needs a Cloudflare environment",
                hint=f"choose one of: {', '.join(self.cloudflare_environments())}",
            )
        return self.environment

    def cloudflare_environments(self) -> list[str]:
        return [n for n, e in self.config.environments.items() if not e.is_local]

    def chosen_workers(self, chosen: Sequence[str]) -> tuple[str, ...]:
        """The aliases ``--worker`` names (deduplicated), else every worker of the config; an
        alias the config does not have is a usage error naming the ones it has."""
        known = list(self.config.workers)
        for alias in chosen:
            if alias not in known:
                raise UsageError(
                    f"--worker {alias!r} is not a worker of the config",
                    hint=f"choose one of: {', '.join(known)}",
                )
        return tuple(dict.fromkeys(chosen)) if chosen else tuple(known)

    def namespace(self) -> str:
        """The environment's dispatch namespace name."""
        name = self.require_cloudflare().namespace
        assert name is not None  # guaranteed by EnvironmentConfig validation
        return name

    def dispatcher(self) -> str:
        """The environment's dispatcher Worker name."""
        name = self.require_cloudflare().dispatcher
        assert name is not None  # guaranteed by EnvironmentConfig validation
        return name
