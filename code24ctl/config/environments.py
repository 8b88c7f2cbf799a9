"""Choose the environment a command runs in, and say where the choice came from.

The order: ``--env`` (before or after the command), ``CODE24_ENV``, a command's own default
(``serve``: ``local``), the config's ``default_env``, the config's only non-local environment.
Every error names the source, so ``CODE24_ENV=stagin`` left in a shell is found at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.config.size_bound import read_bounded
from code24ctl.constants import ENVIRONMENT_ENV_VAR
from code24ctl.errors import UsageError
from code24ctl.names import did_you_mean

if TYPE_CHECKING:
    from code24ctl.config.models import Config
    from code24ctl.config.resolved import ResolvedConfig


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
    broken or missing config; the loader's size bound still applies.

    A plain file naming its ``default_env`` among its environments is read by
    :func:`scan_default_env`, without PyYAML (importing it is ~8 ms of every ``--help``,
    benchmarks/README.md, "startup"); anything else is parsed, within the loader's bounds (a
    hostile file must not stall ``--help`` either).
    """
    try:
        text = read_bounded(path).decode("utf-8")
    except Exception:
        return None
    default = scan_default_env(text)
    if default is None:
        return _describe_parsed(path, text)
    if os.environ.get(ENVIRONMENT_ENV_VAR):
        return f"{os.environ[ENVIRONMENT_ENV_VAR]}, from {ENVIRONMENT_ENV_VAR}"
    return f"{default}, from default_env in {path}"


# A top-level key (column 0), a plain name, and what follows it on the line.
_TOP_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?:[ ]+(.*))?")
# An environment's key in the block under ``environments:``, nothing else on its line.
_ENV_KEY = re.compile(r"( +)([A-Za-z_][A-Za-z0-9_-]*):[ ]*(?:#.*)?")
# A plain scalar that YAML reads as this very string, then an optional comment.
_PLAIN_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ ]*(?:[ ]#.*)?")
# Plain words YAML 1.1 (PyYAML) reads as booleans or null, not as strings.
_NOT_STRINGS = frozenset({"yes", "no", "true", "false", "on", "off", "null"})
# Tabs, and characters YAML may read as line breaks where str.split("\n") does not.
_NOT_PLAIN = "\t\r\x85\u2028\u2029"


def scan_default_env(text: str) -> str | None:
    """The config's ``default_env`` when a line scan can tell it is one of its environments;
    None when it cannot (then the caller parses the YAML).

    It decides only for the plain block style ``namespaces.yaml`` is written in: every line at
    column 0 a comment or ``name:`` (each name once), ``default_env: NAME`` a plain word, and
    ``environments:`` a block whose keys are plain words on lines of their own. Anything else
    (tabs, flow style, quotes, anchors, documents, a default naming no environment) is left to
    PyYAML. It reads only these two keys: whether the rest of the file is valid is the loader's
    business when a command runs.
    """
    if any(char in text for char in _NOT_PLAIN):
        return None
    seen: set[str] = set()
    default: str | None = None
    names: set[str] = set()
    in_environments = False
    env_indent: int | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            top = _TOP_KEY.fullmatch(line)
            if top is None or top.group(1) in seen:
                return None
            key, rest = top.group(1), (top.group(2) or "").strip()
            seen.add(key)
            in_environments = key == "environments"
            if in_environments and rest and not rest.startswith("#"):
                return None
            if key == "default_env":
                word = _PLAIN_NAME.fullmatch(rest)
                if word is None or word.group(1).lower() in _NOT_STRINGS:
                    return None
                default = word.group(1)
            continue
        if not in_environments:
            continue
        indent = len(line) - len(line.lstrip(" "))
        if env_indent is None:
            env_indent = indent
        if indent < env_indent:
            return None
        if indent == env_indent:
            env = _ENV_KEY.fullmatch(line)
            if env is None or env.group(2).lower() in _NOT_STRINGS:
                return None
            names.add(env.group(2))
    return default if default is not None and default in names else None


def _describe_parsed(path: str, text: str) -> str | None:
    """:func:`describe_default` for a file the scan could not read: parsed, within bounds."""
    import yaml

    from code24ctl.config.bounds import check_nesting

    try:
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
    from code24ctl.config.resolved import ResolvedConfig

    warned: set[str] = set()
    config = load_config(path, warned=warned)
    choice = choose_environment(path, config, requested, command_default=command_default)
    resolved = resolve_config(path, choice.name, warned=warned)
    return ResolvedConfig(
        path=resolved.path, env_name=choice.name, config=resolved.config, env_origin=choice.origin
    )
