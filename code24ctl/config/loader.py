"""Read ``namespaces.yaml`` into a validated :class:`~code24ctl.config.models.Config`.

Loading is three steps, each of which can fail with a located
:class:`~code24ctl.errors.ConfigError`:

1. parse the YAML within bounds (size, depth, alias expansion, number size: see
   :mod:`code24ctl.config.bounds`), remembering the line of every key and list item;
2. expand ``${VAR}`` from the process environment and ``{env}`` to the chosen environment's name;
3. validate with pydantic (unknown keys are errors) and map every problem back to its line.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from code24ctl.config.bounds import (
    BoundedLoader,
    BoundsExceeded,
    check_expansion,
    check_nesting,
    read_bounded,
    worded_error,
)
from code24ctl.config.checks import Location, offline_problems, reference_problems
from code24ctl.config.models import Config, ReferenceProblems
from code24ctl.config.paths import builtin_config_path as builtin_config_path
from code24ctl.config.paths import config_path_from as config_path_from
from code24ctl.config.paths import missing_config_origin
from code24ctl.config.resolved import ResolvedConfig
from code24ctl.constants import TOKEN_ENV_VAR
from code24ctl.errors import ConfigError, ConfigProblem, UsageError
from code24ctl.names import did_you_mean

log = logging.getLogger(__name__)

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | os.PathLike[str], *, warned: set[str] | None = None) -> Config:
    """Read and validate the file with ``{env}`` left as written.

    Warnings (a value shaped like a token, a prefix no zone route reaches) are logged once per
    ``warned``: a caller that loads the file more than once (once per environment) passes the
    same set to each load.
    """
    return _load(str(path), None, set() if warned is None else warned)


def resolve_config(
    path: str | os.PathLike[str], env_name: str, *, warned: set[str] | None = None
) -> ResolvedConfig:
    """Read and validate the file for one environment, with ``{env}`` expanded (``warned``:
    as for :func:`load_config`)."""
    config = _load(str(path), env_name, set() if warned is None else warned)
    return ResolvedConfig(path=str(path), env_name=env_name, config=config)


def validate_config(
    path: str | os.PathLike[str], *, strict: bool = False, warned: set[str] | None = None
) -> Config:
    """``config validate``: the file as written and for each environment it defines, with
    every problem of every pass reported at once (one :class:`ConfigError`, sorted by line).

    ``strict`` turns warnings into problems (for CI).
    """
    path = str(path)
    warned = set() if warned is None else warned
    loaded = _collect(path, None, thorough=True)
    problems, warnings = list(loaded.problems), list(loaded.warnings)
    environments = loaded.data.get("environments")
    for env_name in environments if isinstance(environments, dict) else {}:
        if not isinstance(env_name, str):
            continue  # not a name: the models say so
        # {env} expansions must validate too, and paths that name {env} exist per environment.
        each = _collect(path, env_name, thorough=True)
        problems.extend(each.problems)
        warnings.extend(each.warnings)
    if strict:
        problems.extend(
            ConfigProblem(w.field, f"{w.message} (a warning; --strict fails on it)", w.line)
            for w in warnings
        )
    else:
        _warn_once(path, warnings, warned)
    if problems or loaded.config is None:
        raise ConfigError(path, _ordered(problems))
    return loaded.config


def _load(path: str, env_name: str | None, warned: set[str]) -> Config:
    loaded = _collect(path, env_name)
    _warn_once(path, loaded.warnings, warned)
    if loaded.problems or loaded.config is None:
        raise ConfigError(path, _ordered(loaded.problems))
    return loaded.config


@dataclass
class _Loaded:
    """One read of the file: the data, the config when it validated, and what was found."""

    data: dict[str, Any]
    config: Config | None
    problems: list[ConfigProblem]
    warnings: list[ConfigProblem]


def _collect(path: str, env_name: str | None, *, thorough: bool = False) -> _Loaded:
    """Read the file once and gather every problem, from every check, without stopping at
    the first phase that finds one (only YAML that cannot be read stops it)."""
    text = _read(path)
    data, lines = _parse_yaml(path, text)
    problems: list[ConfigProblem] = []
    unset: dict[tuple[str, ...], str] = {}
    warnings: list[ConfigProblem] = []
    data = _expand_variables(data, (), lines, problems, unset, warnings)
    if env_name is not None:
        environments = data.get("environments") if isinstance(data, dict) else None
        if isinstance(environments, dict) and env_name not in environments:
            raise UsageError(
                f"unknown environment {env_name!r} in {path}",
                hint=f"choose one of: {', '.join(map(str, environments))}",
            )
        data = _expand_env_name(data, env_name)
    errors, cautions = offline_problems(data, Path(path).parent, unset, thorough=thorough)
    problems.extend(_located(errors, lines))
    warnings.extend(_located(cautions, lines))
    # A value refused while expanding was emptied: what the models then say about that
    # value (or the object holding it) is a consequence, not another mistake.
    spoiled = [p.field for p in problems]
    config: Config | None = None
    try:
        config = Config.model_validate(data)
        config._unset_variables = {_dotted(at): name for at, name in unset.items()}
    except ValidationError as exc:
        problems.extend(
            p
            for p in _problems_from(exc, lines, unset)
            if not any(_related(p.field, field) for field in spoiled)
        )
        if not _has_reference_problems(exc):
            # The cross-field checks run only on fields that validated; run them on the
            # data too, so a bad field does not hide an unknown worker.
            problems.extend(_located(reference_problems(data), lines))
    return _Loaded(data, config, problems, warnings)


def _related(one: str, other: str) -> bool:
    """Whether two dotted fields are the same, or one holds the other."""
    inner, outer = (one, other) if len(one) >= len(other) else (other, one)
    return inner == outer or inner.startswith((outer + ".", outer + "["))


def _has_reference_problems(exc: ValidationError) -> bool:
    return any(
        isinstance((error.get("ctx") or {}).get("error"), ReferenceProblems)
        for error in exc.errors(include_url=False)
    )


def _located(found: list[tuple[Location, str]], lines: Lines) -> list[ConfigProblem]:
    located = []
    for location, message in found:
        where = tuple(str(part) for part in location)
        located.append(ConfigProblem(_dotted(where), message, _line(lines, where)))
    return located


def _ordered(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """Each problem once, in the file's order (unlocated ones first: they concern the file)."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: -1 if p.line is None else p.line)


def _read(path: str) -> str:
    try:
        return read_bounded(path).decode("utf-8")
    except BoundsExceeded as exc:
        raise ConfigError(path, [ConfigProblem("", exc.message, exc.line)]) from None
    except FileNotFoundError:
        origin, hint = missing_config_origin(path)
        raise UsageError(f"config file {path} not found ({origin})", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("", f"cannot read the file: {exc}")]) from None


Lines = dict[tuple[str, ...], int]


def _parse_yaml(path: str, text: str) -> tuple[Any, Lines]:
    try:
        # One parse: the node tree gives the lines, the same tree gives the data.
        check_nesting(text)
        loader = BoundedLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                check_expansion(node)  # before anything walks the tree an alias may multiply
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except BoundsExceeded as exc:
        raise ConfigError(path, [ConfigProblem("", exc.message, exc.line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [_yaml_problem(worded_error(exc, text), text)]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, [ConfigProblem("", "the file must be a mapping of settings", 1)])
    lines: Lines = {}
    duplicates: list[ConfigProblem] = []
    if node is not None:
        _record_lines(node, (), lines, duplicates)
    if duplicates:
        raise ConfigError(path, duplicates)
    return data, lines


def _yaml_problem(exc: yaml.YAMLError, text: str) -> ConfigProblem:
    """A YAML syntax error located by line and column, with the offending line and a caret."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return ConfigProblem("", f"not valid YAML: {problem}")
    lines = text.splitlines()
    source = lines[mark.line] if mark.line < len(lines) else ""
    snippet = f"\n      {source}\n      {' ' * mark.column}^" if source.strip() else ""
    return ConfigProblem(
        "", f"not valid YAML: {problem} (column {mark.column + 1}){snippet}", mark.line + 1
    )


def _record_lines(
    node: yaml.Node, at: tuple[str, ...], lines: Lines, duplicates: list[ConfigProblem]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            where = (*at, key)
            if key in seen:
                # PyYAML silently keeps the last one; a duplicate key is almost always a mistake.
                duplicates.append(
                    ConfigProblem(_dotted(where), "duplicate key", key_node.start_mark.line + 1)
                )
            seen.add(key)
            lines[where] = key_node.start_mark.line + 1
            _record_lines(value_node, where, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            where = (*at, str(index))
            lines[where] = item.start_mark.line + 1
            _record_lines(item, where, lines, duplicates)


def _expand_variables(
    value: Any,
    at: tuple[str, ...],
    lines: Lines,
    problems: list[ConfigProblem],
    unset: dict[tuple[str, ...], str],
    warnings: list[ConfigProblem],
) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}``; a lone unset ``${VAR}`` becomes null."""
    if isinstance(value, dict):
        expanded_dict: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(k, str) and _refuse_token(k, (*at, k), lines, problems, warnings) != k:
                continue
            expanded_dict[k] = _expand_variables(v, (*at, str(k)), lines, problems, unset, warnings)
        return expanded_dict
    if isinstance(value, list):
        return [
            _expand_variables(v, (*at, str(i)), lines, problems, unset, warnings)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value
    if "${" not in value:
        return _refuse_token(value, at, lines, problems, warnings)
    for match in _VAR_RE.finditer(value):
        if match.group(1) == TOKEN_ENV_VAR:
            # Config values end up printed (config show, deploy --dry-run) and uploaded as
            # plain-text vars; the token must never travel that way.
            problems.append(
                ConfigProblem(
                    _dotted(at),
                    f"{TOKEN_ENV_VAR} cannot be used in the config: it would be printed and "
                    "uploaded as plain text (set a secret with `code24ctl secret put` instead)",
                    _line(lines, at),
                )
            )
            return ""
    whole = _VAR_RE.fullmatch(value)
    if whole and whole.group(2) is None and whole.group(1) not in os.environ:
        unset[at] = whole.group(1)
        return None

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(
            ConfigProblem(_dotted(at), f"environment variable {name} is not set", _line(lines, at))
        )
        return ""

    return _refuse_token(_VAR_RE.sub(substitute, value), at, lines, problems, warnings)


#: A Cloudflare credential in the scannable format (prefix, 40 characters, a checksum), or a
#: legacy API token (40 letters, digits, '-' and '_'). Only a warning: other strings fit too.
_TOKEN_SHAPES = (
    re.compile(r"(?<![A-Za-z0-9])(?:cfut|cfat|cfk)_[A-Za-z0-9]{40}[0-9a-fA-F]{8}(?![A-Za-z0-9])"),
    re.compile(r"(?<![A-Za-z0-9_-])(?=[^\s]*[A-Z])(?=[^\s]*[a-z])(?=[^\s]*[0-9])"
               r"[A-Za-z0-9_-]{40}(?![A-Za-z0-9_-])"),
)  # fmt: skip


def _warn_once(path: str, warnings: list[ConfigProblem], warned: set[str]) -> None:
    # A command may load the file once per environment; say each thing once.
    for warning in warnings:
        text = warning.render(path)
        if text not in warned:
            warned.add(text)
            log.warning("%s", text)


def _refuse_token(
    value: str,
    at: tuple[str, ...],
    lines: Lines,
    problems: list[ConfigProblem],
    warnings: list[ConfigProblem],
) -> str:
    """``value``, unless it holds the API token (then a problem, and ""); warn on token shapes.

    Config values are printed (config show, --json, deploy --dry-run), written (wrangler.toml)
    and uploaded as plain-text vars; the token must never travel that way, whether written
    literally or through a variable. The problem never quotes the value.
    """
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if len(token) >= 8 and token in value:
        problems.append(
            ConfigProblem(
                _dotted(at),
                f"this value contains the API token ({TOKEN_ENV_VAR}): it would be printed "
                "and uploaded as plain text (set a secret with `code24ctl secret put` instead)",
                _line(lines, at),
            )
        )
        return ""
    if any(shape.search(value) for shape in _TOKEN_SHAPES):
        warnings.append(
            ConfigProblem(
                _dotted(at),
                "this value looks like a Cloudflare API token; config values are printed and "
                "uploaded as plain text (keep credentials in secrets: `code24ctl secret put`)",
                _line(lines, at),
            )
        )
    return value


def _expand_env_name(value: Any, env_name: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env_name(v, env_name) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env_name(v, env_name) for v in value]
    if isinstance(value, str):
        return value.replace("{env}", env_name)
    return value


def _problems_from(
    exc: ValidationError, lines: Lines, unset: dict[tuple[str, ...], str]
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        # "[key]" marks a problem with a dict key itself; the key's own line is the place.
        loc = tuple(str(part) for part in error["loc"] if part != "[key]")
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, ReferenceProblems):
            for location, text in ctx_error.problems:
                where = tuple(str(part) for part in location)
                problems.append(ConfigProblem(_dotted(where), text, _line(lines, where)))
            continue
        message = _message(error)
        if loc in unset:
            # A lone ${VAR} that is unset becomes null; say why the value is missing.
            message = f"environment variable {unset[loc]} is not set"
        problems.append(ConfigProblem(_dotted(loc), message, _line(lines, loc)))
    return problems


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(error)
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _unknown_key(error: Mapping[str, Any]) -> str:
    """An unknown key: where it belongs when it is misplaced, else the nearest known key."""
    from code24ctl.config.models import misplaced_key_home

    loc = tuple(str(part) for part in error["loc"])
    home = misplaced_key_home(loc)
    if home is not None:
        return f"looks like a misplaced key: {loc[-1]!r} belongs {home}"
    guess = did_you_mean(loc[-1], _siblings(loc)) if loc else ""
    return f"unknown key{guess}{'' if guess else ' (check the spelling'}" + (
        "" if guess else "; see the config reference in README.md)"
    )


def _siblings(loc: tuple[str, ...]) -> list[str]:
    from code24ctl.config.models import keys_at

    return keys_at(loc[:-1])


def _line(lines: Lines, loc: tuple[str, ...]) -> int | None:
    # A pydantic location may go deeper than any YAML key (or name a missing one): use the
    # nearest enclosing key we saw.
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _dotted(loc: tuple[str, ...]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
