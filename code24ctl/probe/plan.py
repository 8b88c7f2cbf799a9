"""What a probe sends where: the caller's options over the config's defaults, as a plan.

:func:`plan_probe` is pure: config + :class:`ProbeOptions` -> :class:`ProbePlan` (one
:class:`ProbeTarget` per route with a sample), or a :class:`~code24ctl.errors.UsageError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from code24ctl.config import ResolvedConfig, RouteConfig
from code24ctl.constants import DEFAULT_PROBE_CONCURRENCY, DEFAULT_VERSION_WAIT_S
from code24ctl.dispatch.route_table import Route
from code24ctl.dispatch.routing import forwarded_target, split_target
from code24ctl.errors import UsageError
from code24ctl.names import did_you_mean
from code24ctl.route_defaults import prefix_matches

if TYPE_CHECKING:
    pass


DEFAULT_CONCURRENCY = DEFAULT_PROBE_CONCURRENCY


class ProbeOptions(BaseModel):
    """What the caller asked for; ``None`` means "the config's default"."""

    model_config = ConfigDict(frozen=True)

    base_url: str | None = None
    repeat: int = Field(default=1, ge=1)
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    max_latency_ms: int | None = Field(default=None, gt=0)
    fail_on_fallback: bool = False
    routes: tuple[str, ...] = ()
    direct: bool = False
    # Sent with every request (the version override header of ``probe --version``).
    headers: tuple[tuple[str, str], ...] = ()
    # The dispatcher version these requests ask for: answers from another one fail.
    version: str | None = None
    # With ``version``: how long to wait, at most, for the first answer from it.
    version_wait_s: float = Field(default=DEFAULT_VERSION_WAIT_S, ge=0)


class ProbeSettings(BaseModel):
    """The settings a probe actually ran with (options over config defaults)."""

    repeat: int
    concurrency: int
    timeout_s: float
    max_latency_ms: int
    fail_on_fallback: bool
    direct: bool


@dataclass(frozen=True)
class ProbeTarget:
    """One route's sample request, ready to send (to the dispatcher and maybe the worker)."""

    route: str
    worker: str
    method: str
    path: str
    url: str
    direct_url: str | None
    content: bytes | None
    headers: dict[str, str]


@dataclass(frozen=True)
class ProbePlan:
    """Everything :func:`probe_routes` needs; built by :func:`plan_probe`."""

    environment: str
    base_url: str
    settings: ProbeSettings
    targets: tuple[ProbeTarget, ...]
    skipped: tuple[RouteConfig, ...]
    notes: tuple[str, ...]
    order: tuple[str, ...]  # route prefixes in config order, probed and skipped alike
    version: str | None = None
    version_wait_s: float = DEFAULT_VERSION_WAIT_S


def plan_probe(resolved: ResolvedConfig, options: ProbeOptions) -> ProbePlan:
    """Decide what to send where, validating the options against the config."""
    config = resolved.config
    environment = resolved.environment
    settings = ProbeSettings(
        repeat=options.repeat,
        concurrency=options.concurrency,
        timeout_s=options.timeout_s or config.probe.timeout_s,
        max_latency_ms=options.max_latency_ms or config.probe.max_latency_ms,
        fail_on_fallback=options.fail_on_fallback,
        direct=options.direct,
    )
    base_url = _base_url(resolved, options.base_url)
    routes = _select_routes(resolved, options.routes)
    direct_bases = {**(environment.upstreams or {}), **environment.direct}

    targets: list[ProbeTarget] = []
    skipped: list[RouteConfig] = []
    notes: list[str] = []
    for route in routes:
        sample = route.probe
        if sample is None:
            skipped.append(route)
            notes.append(f"{route.prefix}: skipped, no probe sample in the config")
            continue
        direct_url = None
        if options.direct:
            direct_base = direct_bases.get(route.worker)
            if direct_base is None:
                key = "upstreams" if environment.is_local else "direct"
                notes.append(
                    f"{route.prefix}: no direct URL for worker {route.worker} "
                    f"(set environments.{resolved.env_name}.{key}.{route.worker})"
                )
            else:
                direct_url = direct_base + forwarded_path(route, sample.path)
        headers = dict(sample.headers)
        headers.update(options.headers)
        content: bytes | None = None
        if sample.has_json:
            content = json.dumps(sample.json_body).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        elif sample.body is not None:
            content = sample.body.encode()
        targets.append(
            ProbeTarget(
                route=route.prefix,
                worker=route.worker,
                method=sample.method,
                path=sample.path,
                url=base_url + sample.path,
                direct_url=direct_url,
                content=content,
                headers=headers,
            )
        )
    if not targets:
        raise UsageError(
            "nothing to probe: no selected route has a probe sample",
            hint=f"add a 'probe: {{method, path, json}}' to the routes in {resolved.path}",
        )
    return ProbePlan(
        environment=resolved.env_name,
        base_url=base_url,
        settings=settings,
        targets=tuple(targets),
        skipped=tuple(skipped),
        notes=tuple(notes),
        order=tuple(route.prefix for route in routes),
        version=options.version,
        version_wait_s=options.version_wait_s,
    )


def forwarded_path(route: RouteConfig, path: str) -> str:
    """``path`` as the dispatcher forwards it to the route's worker (docs/dispatch.md, D1)."""
    bare, query = split_target(path)
    return forwarded_target(Route(route.prefix, route.worker, route.effective_strip), bare, query)


def _base_url(resolved: ResolvedConfig, override: str | None) -> str:
    if override is not None:
        parts = urlsplit(override)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise UsageError(f"--base-url {override!r} is not an http(s) URL like https://host")
        return override.rstrip("/")
    base = resolved.environment.base_url
    if base is None:
        raise UsageError(
            f"environment {resolved.env_name!r} (from {resolved.env_origin}) has no base_url "
            "to probe",
            hint=f"set environments.{resolved.env_name}.base_url in {resolved.path} "
            "or pass --base-url URL",
        )
    return base


def _select_routes(resolved: ResolvedConfig, prefixes: Sequence[str]) -> list[RouteConfig]:
    routes = list(resolved.config.routes)
    if not prefixes:
        return routes
    wanted = [prefix.rstrip("/") or "/" for prefix in prefixes]
    chosen = [r for r in routes if any(prefix_matches(r.prefix, want) for want in wanted)]
    if not chosen:
        raise UsageError(
            f"no route under {', '.join(map(repr, prefixes))}"
            + did_you_mean(wanted[0], [r.prefix for r in routes]),
            hint=f"configured routes: {', '.join(r.prefix for r in routes)}",
        )
    return chosen
