"""Choose the environment a command runs in, and say where the choice came from.

The order: ``--env`` (before or after the command), ``CODE24_ENV``, a command's own default
(``serve``: ``local``), the config's ``default_env``, the config's only non-local environment.
Every error names the source, so ``CODE24_ENV=stagin`` left in a shell is found at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.constants import ENVIRONMENT_ENV_VAR
from code24ctl.errors import UsageError
from code24ctl.names import did_you_mean

if TYPE_CHECKING:
    from code24ctl.config.models import Config, ResolvedConfig


@dataclass(frozen=True)
class EnvironmentChoice:
    """An environment name and where it came from (``--env``, ``CODE24_ENV``, ...)."""

    name: str
    origin: str


def choose_environment(
    path: str, config: Config, requested: str | None, *, command_default: str | None = None
) -> EnvironmentChoice:
    """Pick the environment (see the module docstring); unknown names are exit 2 with a hint."""
    environments = list(config.environments)
    if requested is not None:
        choice = EnvironmentChoice(requested, "--env")
    elif os.environ.get(ENVIRONMENT_ENV_VAR):
        choice = EnvironmentChoice(os.environ[ENVIRONMENT_ENV_VAR], ENVIRONMENT_ENV_VAR)
    elif command_default is not None and command_default in config.environments:
        choice = EnvironmentChoice(command_default, "this command's default")
    else:
        choice = default_environment(path, config)
    if choice.name not in config.environments:
        raise UsageError(
            f"unknown environment {choice.name!r} (from {choice.origin}) in {path}"
            + did_you_mean(choice.name, environments),
            hint=f"choose one of: {', '.join(environments)}",
        )
    return choice


def default_environment(path: str, config: Config) -> EnvironmentChoice:
    """The environment used when none is asked for: ``default_env``, else the only non-local."""
    if config.default_env is not None:
        return EnvironmentChoice(config.default_env, f"default_env in {path}")
    remote = [name for name, env in config.environments.items() if not env.is_local]
    if len(remote) == 1:
        return EnvironmentChoice(remote[0], f"the only non-local environment in {path}")
    raise UsageError(
        f"no environment chosen, and {path} has {len(remote) or 'no'} non-local ones"
        + (f" ({', '.join(remote)})" if remote else "")
        + " and no default_env",
        hint=f"pass --env NAME, export {ENVIRONMENT_ENV_VAR}=NAME, or set `default_env: NAME` "
        f"in {path}; environments: {', '.join(config.environments)}",
    )


def describe_default(path: str) -> str | None:
    """``staging, from default_env in namespaces.yaml`` for help text; None if it cannot be
    told. Reads the YAML only (no validation): help must stay quick and render even with a
    broken or missing config; the loader's bounds still apply (size and nesting: a hostile
    file must not stall ``--help`` either)."""
    import yaml

    from code24ctl.config.bounds import check_nesting, read_bounded

    try:
        text = read_bounded(path).decode("utf-8")
        check_nesting(text)
        # Bounded above, so libyaml's fast loader is safe here (aliases stay shared objects).
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        environments = data["environments"]
        names = [str(name) for name in environments]
        remote = [str(n) for n, e in environments.items() if not (e or {}).get("upstreams")]
    except Exception:
        return None
    if os.environ.get(ENVIRONMENT_ENV_VAR):
        return f"{os.environ[ENVIRONMENT_ENV_VAR]}, from {ENVIRONMENT_ENV_VAR}"
    default = data.get("default_env")
    if isinstance(default, str) and default in names:
        return f"{default}, from default_env in {path}"
    if len(remote) == 1:
        return f"{remote[0]}, the only non-local environment in {path}"
    return None


def resolve_environment(
    path: str, requested: str | None, *, command_default: str | None = None
) -> ResolvedConfig:
    """Read the config and resolve it for the chosen environment, remembering the origin."""
    # Imported here: describe_default serves --help, which must not pay for the models.
    from code24ctl.config.loader import load_config, resolve_config
    from code24ctl.config.models import ResolvedConfig

    warned: set[str] = set()
    config = load_config(path, warned=warned)
    choice = choose_environment(path, config, requested, command_default=command_default)
    resolved = resolve_config(path, choice.name, warned=warned)
    return ResolvedConfig(
        path=resolved.path, env_name=choice.name, config=resolved.config, env_origin=choice.origin
    )
