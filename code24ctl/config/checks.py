"""The checks of ``namespaces.yaml`` that need no network, run on the file's raw data.

They run whether or not the models validate, so one pass reports every problem: a bad field
does not hide a missing ``path`` or an unreachable route. Every check reads the data
defensively (any value may have the wrong type; the models say so separately) and returns
``(location, message)`` pairs; the loader adds the line.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from code24ctl.errors import UsageError

#: Where in the config a problem is: keys and list indexes, outermost first.
Location = tuple[str | int, ...]
Found = list[tuple[Location, str]]

#: The bindings the dispatcher Worker is uploaded with (``code24ctl.ops.dispatcher_worker``): a
#: var of the same name would make the upload carry two bindings of one name.
DISPATCHER_BINDINGS = ("DISPATCHER", "METADATA", "ROUTE_TABLE", "ANALYTICS")

#: Keys whose lone unset ``${VAR}`` leaves a setting the commands rely on empty.
_NEEDS_A_VALUE = ("zone", "base_url", "metrics_url", "kv_namespace", "namespace", "dispatcher")


def reference_problems(data: Mapping[str, Any]) -> Found:
    """Cross-field problems: routes naming unknown workers, duplicate prefixes, a
    ``default_env`` that is no environment, settings indented into ``vars``, upstreams for
    unknown workers."""
    found: Found = []
    workers = _mapping(data.get("workers"))
    environments = _mapping(data.get("environments"))
    default_env = data.get("default_env")
    if default_env is not None and environments and default_env not in environments:
        found.append(
            (
                ("default_env",),
                f"unknown environment {default_env!r} "
                f"(environments: {', '.join(map(str, environments))})",
            )
        )
    seen: dict[str, int] = {}
    for index, route in enumerate(_list(data.get("routes"))):
        if not isinstance(route, Mapping):
            continue
        worker, prefix = route.get("worker"), route.get("prefix")
        if isinstance(worker, str) and workers and worker not in workers:
            found.append(
                (
                    ("routes", index, "worker"),
                    f"unknown worker {worker!r} "
                    f"(configured: {', '.join(sorted(map(str, workers)))})",
                )
            )
        if isinstance(prefix, str):
            if prefix in seen:
                found.append(
                    (
                        ("routes", index, "prefix"),
                        f"duplicate prefix {prefix!r} (also routes[{seen[prefix]}])",
                    )
                )
            seen.setdefault(prefix, index)
    from code24ctl.config.models import EnvironmentConfig

    for env_name, environment in environments.items():
        if not isinstance(environment, Mapping):
            continue
        for var in _mapping(environment.get("vars")):
            if var in EnvironmentConfig.model_fields:
                found.append(
                    (
                        ("environments", env_name, "vars", var),
                        "not a variable name but an environment setting: indent it one "
                        f"level less (under environments.{env_name})",
                    )
                )
        for key in ("upstreams", "direct"):
            for alias in _mapping(environment.get(key)):
                if workers and alias not in workers:
                    found.append(
                        (("environments", env_name, key, alias), f"unknown worker {alias!r}")
                    )
    return found


def offline_problems(
    data: Mapping[str, Any],
    config_dir: Path,
    unset: Mapping[tuple[str, ...], str],
    *,
    thorough: bool = False,
) -> tuple[Found, Found]:
    """Everything else that can be known without the network: ``(errors, warnings)``.

    Errors: a compatibility date that is no date or is in the future, a var named like a
    dispatcher binding, an unset ``${VAR}`` where a setting needs a value, and (``thorough``)
    a worker ``path`` that cannot be uploaded. Warnings (``thorough``): route-table prefixes
    no zone route reaches, zone routes that reach no prefix. Paths and routes are checked by
    ``config validate`` only: a command that never uploads must not fail on a folder not
    built yet. An unset ``account_id`` is no error: commands that never reach Cloudflare do
    not need it, and the ones that do name the variable.
    """
    errors: Found = []
    warnings: Found = []
    errors.extend(_date_problems(data))
    environments = _mapping(data.get("environments"))
    for env_name, environment in environments.items():
        for var in _mapping(_mapping(environment).get("vars")):
            if var in DISPATCHER_BINDINGS:
                errors.append(
                    (
                        ("environments", env_name, "vars", var),
                        f"{var} is a binding the dispatcher needs "
                        f"({', '.join(DISPATCHER_BINDINGS)}): the upload would carry two "
                        "bindings of that name; rename the variable",
                    )
                )
    for at, name in unset.items():
        if len(at) == 3 and at[0] == "environments" and at[2] in _NEEDS_A_VALUE:
            errors.append((at, f"environment variable {name} is not set"))
    if thorough:
        errors.extend(path_problems(data, config_dir))
        warnings.extend(reachability_problems(data))
    return errors, warnings


def _date_problems(data: Mapping[str, Any]) -> Found:
    value = data.get("compatibility_date")
    if isinstance(value, datetime.date):
        value = value.isoformat()
    if not isinstance(value, str):
        return []  # missing or of the wrong type: the models say so
    try:
        date = datetime.date.fromisoformat(value)
    except ValueError:
        return [(("compatibility_date",), f"{value!r} is not a date like 2025-01-01")]
    # Cloudflare refuses a date later than its own today (workerd's compatibility-date.c++,
    # "Can't set compatibility date in the future"; tests/emulator/README.md cites it).
    today = datetime.datetime.now(datetime.UTC).date()
    if date > today:
        return [
            (
                ("compatibility_date",),
                f"{value} is in the future (today is {today.isoformat()}): Cloudflare refuses "
                "a compatibility date it has not reached",
            )
        ]
    return []


def path_problems(data: Mapping[str, Any], config_dir: Path) -> Found:
    """Worker ``path`` values that cannot be uploaded: missing, empty, unbuilt TypeScript."""
    from code24ctl.cloudflare.local_worker import read_local_worker

    found: Found = []
    for alias, worker in _mapping(data.get("workers")).items():
        path = _mapping(worker).get("path")
        if not isinstance(path, str) or not path or "{env}" in path:
            continue  # "{env}" is checked when the file is read for each environment
        try:
            read_local_worker(config_dir / path, compatibility_date=None, shown_as=path)
        except UsageError as exc:
            found.append((("workers", alias, "path"), exc.render().replace("\n  hint:", ";")))
    return found


def reachability_problems(data: Mapping[str, Any]) -> Found:
    """Per Cloudflare environment: prefixes none of its zone routes reach, and zone routes
    that reach no prefix (the dispatcher would answer ``route_not_found`` to all of it)."""
    prefixes: list[str] = [
        route["prefix"]
        for route in _list(data.get("routes"))
        if isinstance(route, Mapping) and isinstance(route.get("prefix"), str)
    ]
    found: Found = []
    for env_name, environment in _mapping(data.get("environments")).items():
        patterns = [p for p in _list(_mapping(environment).get("routes")) if isinstance(p, str)]
        if not patterns or _mapping(environment).get("upstreams") is not None:
            continue
        paths = {pattern: _pattern_path(pattern) for pattern in patterns}
        for index, prefix in enumerate(prefixes):
            if not any(_reaches(path, prefix) for path in paths.values()):
                found.append(
                    (
                        ("environments", env_name, "routes"),
                        f"no zone route reaches prefix {prefix} (routes[{index}]): requests "
                        f"for it never get to the dispatcher ({', '.join(patterns)})",
                    )
                )
        for index, (pattern, path) in enumerate(paths.items()):
            if not any(_reaches(path, prefix) for prefix in prefixes):
                found.append(
                    (
                        ("environments", env_name, "routes", index),
                        f"zone route {pattern} reaches no prefix of the route table: the "
                        "dispatcher would answer route_not_found for all of it",
                    )
                )
    return found


def _pattern_path(pattern: str) -> str:
    """The path part of a zone route pattern (``host/api/*`` -> ``/api/*``)."""
    _, _, path = pattern.partition("/")
    return "/" + path


def _reaches(pattern_path: str, prefix: str) -> bool:
    """Whether some request under ``prefix`` matches the zone route's path."""
    if pattern_path.endswith("*"):
        base = pattern_path[:-1]
        # /api/* reaches /api/competitive; /elite/brand/v2* reaches part of /elite/brand.
        return (prefix + "/").startswith(base) or base.startswith(prefix.rstrip("/") + "/")
    return pattern_path == prefix or pattern_path.startswith(prefix.rstrip("/") + "/")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
