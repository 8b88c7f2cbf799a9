"""Send every route's sample request and say, per route, whether the answer is JSON.

The verdict of an answer comes from :func:`code24ctl.dispatch.classify.classify_answer`, the
very function behind ``serve``'s fallbacks (and mirrored by the JavaScript dispatcher); this
module only adds ``error`` (no answer at all: refused, reset, timeout) and ``skipped`` (a route
without a ``probe`` sample in the config).

Three layers, so the CLI, ``doctor`` and the benchmark share one engine:

* :func:`plan_probe` (pure): config + options -> :class:`ProbePlan` (what to send where), or a
  :class:`~code24ctl.errors.UsageError`;
* :func:`probe_routes` / :func:`run_probe` (async): send the plan's requests over an injected
  ``aiohttp.ClientSession`` at most ``concurrency`` at a time -> :class:`ProbeReport`;
* :func:`run_plan` / :func:`probe_environment` (sync): build the client with
  :func:`make_client`, the one place a probe client is made, and run the above.

A route passes when its answer is ``json``, its p95 latency is within ``max_latency_ms``, and
the dispatcher answered for the worker. A post-deploy probe must not be green over a dead
platform, so a dispatcher fallback is judged by its reason:

* the worker is not serving (``worker_not_found``, ``worker_error``, ``worker_timeout``,
  ``internal_error``): the route fails, although the fallback answered JSON;
* the worker answered, but not with JSON (``upstream_html``, ``upstream_not_json``, or a
  fallback without a reason): a warning on the row, a failure with ``fail_on_fallback``;
* the dispatcher refused the sample itself (``route_not_found``: the sample does not match the
  deployed route table): the route fails, although the answer is JSON.

A route without a sample is ``skipped``: reported, never failing (a route may have no safe
sample request); if no selected route has a sample at all there is nothing to prove, which is a
usage error. When no probed route got any answer at all, :func:`no_answer_error` gives the one
cause (the CLI exits 3 with it, as for any network failure).
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from code24ctl import __version__
from code24ctl.config import ResolvedConfig, RouteConfig
from code24ctl.constants import DEFAULT_PROBE_CONCURRENCY
from code24ctl.dispatch.classify import Classification, classify_answer
from code24ctl.dispatch.routing import Route, forwarded_target, split_target
from code24ctl.errors import NetworkError, UsageError
from code24ctl.names import did_you_mean
from code24ctl.route_defaults import prefix_matches

if TYPE_CHECKING:
    import aiohttp

# A row's verdict: the classifier's (classify.Verdict), or no answer at all, or no sample to send
# (docs/dispatch.md, D8).
ProbeVerdict = Literal["json", "html", "not-json", "empty", "error", "skipped"]
ErrorKind = Literal["refused", "reset", "timeout", "protocol", "network"]
Outcome = Literal["pass", "fail", "skip"]
ProgressCallback = Callable[[int, int], None]

DEFAULT_CONCURRENCY = DEFAULT_PROBE_CONCURRENCY
EXCERPT_CHARS = 200
USER_AGENT = f"code24ctl-probe/{__version__}"

# Fallback reasons that mean the worker behind the route is not serving: failures by default.
NOT_SERVING_REASONS = frozenset(
    {"worker_not_found", "worker_error", "worker_timeout", "worker_over_limit", "internal_error"}
)
# A fallback without a reason header is counted under this name.
UNKNOWN_REASON = "unknown"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"})

# The order in which a row picks the answer it shows when --repeat got different answers:
# the worst one, so a flaky route is never reported by its good answers.
_SEVERITY: dict[str, int] = {"error": 0, "html": 1, "not-json": 2, "empty": 3, "json": 4}


# --------------------------------------------------------------------------------------------
# Options and plan


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
    # The dispatcher version these requests ask for, named in the report.
    version: str | None = None


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


# --------------------------------------------------------------------------------------------
# Report


class Observation(BaseModel):
    """What one URL answered, over ``attempts`` requests (the worst answer is shown)."""

    url: str | None = None
    verdict: ProbeVerdict
    reason: str
    cloudflare_error: int | None = None
    error: ErrorKind | None = None
    status: int | None = None
    content_type: str | None = None
    x_code24_worker: str | None = None
    fallback: bool | None = None
    fallback_reason: str | None = None
    cf_ray: str | None = None
    request_id: str | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    attempts: int = 0
    verdict_counts: dict[str, int] = Field(default_factory=dict)
    fallback_count: int = 0
    body_excerpt: str | None = None


class RouteResult(Observation):
    """One row of the report: a route, probed through the dispatcher (and maybe directly)."""

    route: str
    worker: str
    method: str | None = None
    path: str | None = None
    outcome: Outcome
    slow: bool = False
    problems: list[str] = Field(default_factory=list)
    # Fallbacks for a worker that answered, but not with JSON (failures with fail_on_fallback).
    warnings: list[str] = Field(default_factory=list)
    # Every fallback reason met, with how many answers had it.
    fallback_reasons: dict[str, int] = Field(default_factory=dict)
    # The dispatcher's own refusal (``route_not_found``, ...) when it answered instead of a worker.
    refused: str | None = None
    direct: Observation | None = None


class ProbeSummary(BaseModel):
    """Counts over the rows."""

    routes: int
    passed: int
    failed: int
    skipped: int
    warned: int = 0  # passed with a warning
    fallbacks: int = 0  # probed routes with at least one answer from a fallback


class ProbeReport(BaseModel):
    """Everything a probe found; ``ok`` is the exit status (0 only when every route passed)."""

    environment: str
    base_url: str
    ok: bool
    summary: ProbeSummary
    # The dispatcher version every request asked for (``--version``), if any.
    version: str | None = None
    settings: ProbeSettings
    duration_ms: float
    notes: list[str]
    routes: list[RouteResult]


# --------------------------------------------------------------------------------------------
# Sending


def make_client(concurrency: int, timeout_s: float) -> aiohttp.ClientSession:
    """The probe's HTTP client: one pool of at most ``concurrency`` kept-alive connections.

    aiohttp, not httpx: httpcore's pool does O(connections^2) bookkeeping per request
    (encode/httpx#3215) and ran 1,000 requests at concurrency 64 at 14x the ideal time where
    aiohttp stays within 1.2x (benchmarks/README.md, "probe"). Redirects are not followed
    (per request): a redirect is what the caller would get, and it is not JSON. Must be called
    inside a running event loop.
    """
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"User-Agent": USER_AGENT},
    )


# The response headers a row reports (lowercase).
_KEPT_HEADERS = (
    "content-type",
    "x-code24-worker",
    "x-code24-fallback",
    "x-code24-fallback-reason",
    "x-code24-request-id",
    "cf-ray",
)


@dataclass(frozen=True)
class _Attempt:
    latency_ms: float
    classification: Classification | None = None
    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes = b""
    error: ErrorKind | None = None
    error_reason: str = ""

    @property
    def verdict(self) -> str:
        return self.classification.verdict if self.classification else "error"

    @property
    def fallback(self) -> bool:
        return self.headers is not None and (
            self.headers.get("x-code24-fallback", "").strip().lower() == "true"
        )


async def _send(
    client: aiohttp.ClientSession,
    target: ProbeTarget,
    url: str,
    timeout_s: float,
    semaphore: asyncio.Semaphore,
) -> _Attempt:
    import aiohttp

    # Without a configured content type a raw body goes without one, as a plain fetch() sends
    # it (aiohttp would otherwise label bytes application/octet-stream).
    skip = () if _has_header(target.headers, "content-type") else ("Content-Type",)
    async with semaphore:
        started = time.perf_counter()
        try:
            # The timeout covers the whole request, body included.
            async with (
                asyncio.timeout(timeout_s),
                client.request(
                    target.method,
                    url,
                    data=target.content,
                    headers=target.headers,
                    skip_auto_headers=skip,
                    allow_redirects=False,
                ) as response,
            ):
                body = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            kind, reason = _describe_failure(exc, url, timeout_s)
            latency = (time.perf_counter() - started) * 1000
            return _Attempt(latency, error=kind, error_reason=reason)
        latency = (time.perf_counter() - started) * 1000
    headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    classification = classify_answer(response.status, headers.get("content-type"), body)
    location = response.headers.get("location")
    if 300 <= response.status < 400 and location:
        # Probe does not follow redirects (a caller of the API would not either): say where
        # it was sent, rather than describing the redirect's (usually empty) body.
        classification = Classification(
            classification.verdict,
            f"a redirect (HTTP {response.status}) to {location}, which probe does not follow",
        )
    return _Attempt(
        latency,
        classification=classification,
        status=response.status,
        headers=headers,
        body=body,
    )


def _has_header(headers: dict[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)


def _describe_failure(exc: BaseException, url: str, timeout_s: float) -> tuple[ErrorKind, str]:
    import aiohttp

    where = urlsplit(url)
    origin = where.netloc
    causes = list(_causes(exc))
    if any(isinstance(c, TimeoutError) for c in causes):
        return "timeout", f"no complete answer within {timeout_s:g} s"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "refused", f"connection refused by {origin}"
    if any(isinstance(c, ConnectionResetError | BrokenPipeError) for c in causes):
        return "reset", f"connection reset by {origin}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "protocol", f"{origin} closed the connection before a complete answer"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "protocol", f"{origin} sent a malformed answer: {exc.message}"
    detail = next((str(c) for c in causes if str(c)), type(exc).__name__)
    # aiohttp's own certificate error subclasses ssl's without its attributes: read them
    # from whichever carries them.
    certificates = [c for c in causes if isinstance(c, ssl.SSLCertVerificationError)]
    if certificates:
        why = next(
            (m for c in certificates if (m := getattr(c, "verify_message", None))),
            "verification failed",
        )
        return "network", f"the TLS certificate of {origin} is not trusted: {why}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "network", f"cannot connect to {origin}: {exc.os_error}"
    return "network", f"{origin}: {detail}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what caused it, and the members of any exception group on the way."""
    stack: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend((current.__cause__, current.__context__))
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        os_error = getattr(current, "os_error", None)  # aiohttp.ClientConnectorError
        if isinstance(os_error, BaseException):
            stack.append(os_error)


async def probe_routes(
    plan: ProbePlan,
    client: aiohttp.ClientSession,
    on_progress: ProgressCallback | None = None,
) -> ProbeReport:
    """Send the plan's requests over ``client``, at most ``concurrency`` at a time.

    Every request (route x repeat, and the direct one with ``direct``) is its own job, queued
    round by round so the first round covers every route before any repeats.
    ``on_progress(done, total)`` is called after each request.
    """
    settings = plan.settings
    semaphore = asyncio.Semaphore(settings.concurrency)
    jobs: list[tuple[int, bool, str]] = []
    for _round in range(settings.repeat):
        for index, target in enumerate(plan.targets):
            jobs.append((index, False, target.url))
            if target.direct_url is not None:
                jobs.append((index, True, target.direct_url))
    total = len(jobs)
    done = 0

    async def run(index: int, url: str) -> _Attempt:
        nonlocal done
        attempt = await _send(client, plan.targets[index], url, settings.timeout_s, semaphore)
        done += 1
        if on_progress is not None:
            on_progress(done, total)
        return attempt

    started = time.perf_counter()
    attempts = await asyncio.gather(*(run(index, url) for index, _direct, url in jobs))
    duration_ms = (time.perf_counter() - started) * 1000

    via: list[list[_Attempt]] = [[] for _ in plan.targets]
    direct: list[list[_Attempt]] = [[] for _ in plan.targets]
    for (index, is_direct, _url), attempt in zip(jobs, attempts, strict=True):
        (direct if is_direct else via)[index].append(attempt)

    rows: dict[str, RouteResult] = {}
    for index, target in enumerate(plan.targets):
        rows[target.route] = _route_result(target, via[index], direct[index], settings)
    for route in plan.skipped:
        rows[route.prefix] = RouteResult(
            route=route.prefix,
            worker=route.worker,
            outcome="skip",
            verdict="skipped",
            reason="no probe sample in the config",
        )
    ordered = [rows[prefix] for prefix in plan.order]
    summary = ProbeSummary(
        routes=len(ordered),
        passed=sum(row.outcome == "pass" for row in ordered),
        failed=sum(row.outcome == "fail" for row in ordered),
        skipped=sum(row.outcome == "skip" for row in ordered),
        warned=sum(row.outcome == "pass" and bool(row.warnings) for row in ordered),
        fallbacks=sum(bool(row.fallback_reasons) for row in ordered),
    )
    notes = list(plan.notes)
    line = fallback_summary(ordered)
    if line:
        notes.append(line)
    return ProbeReport(
        environment=plan.environment,
        base_url=plan.base_url,
        ok=summary.failed == 0,
        summary=summary,
        version=plan.version,
        settings=settings,
        duration_ms=round(duration_ms, 1),
        notes=notes,
        routes=ordered,
    )


def fallback_summary(rows: Sequence[RouteResult]) -> str:
    """``3 of 5 answered by fallback: worker_not_found`` and each other reason ("" when none).

    A reason met by more than one route carries its count after a multiplication sign.

    Counted by route (a route is counted once per reason it met), over the probed routes.
    """
    probed = [row for row in rows if row.outcome != "skip"]
    reasons: Counter[str] = Counter()
    for row in probed:
        reasons.update(row.fallback_reasons.keys())
    hit = sum(bool(row.fallback_reasons) for row in probed)
    if not hit:
        return ""
    named = ", ".join(
        name if count == 1 else f"{name} \u00d7{count}" for name, count in reasons.most_common()
    )
    return f"{hit} of {len(probed)} answered by fallback: {named}"


def no_answer_error(
    report: ProbeReport, *, from_flag: bool = False, local: bool = True
) -> NetworkError | None:
    """One clear error when no probed route got any answer at all (refused, DNS, timeout).

    None when at least one answer came back, or nothing was probed. The causes are named once
    each, not once per route, with a hint that names where the URL came from (``from_flag``:
    ``--base-url``; else the environment's ``base_url``, ``local`` when it is served by
    ``code24ctl serve``).
    """
    probed = [row for row in report.routes if row.outcome != "skip"]
    if not probed or any(set(row.verdict_counts) != {"error"} for row in probed):
        return None
    causes = list(dict.fromkeys(row.reason for row in probed))
    host = urlsplit(report.base_url).hostname or report.base_url
    kinds = {row.error for row in probed}
    source = "--base-url" if from_flag else f"base_url of environment {report.environment}"
    check = (
        "check --base-url" if from_flag else "check the environment's base_url or pass --base-url"
    )
    if any("TLS certificate" in cause for cause in causes):
        hint = (
            f"{host}'s certificate is not trusted here (self-signed, or from a private CA): "
            f"set SSL_CERT_FILE to a CA bundle that holds its issuer; the URL came from {source}"
        )
    elif host in LOCAL_HOSTS and local:
        hint = f"is code24ctl serve running? (code24ctl serve --env {report.environment})"
    elif host in LOCAL_HOSTS:
        hint = (
            f"nothing answers at {report.base_url} (from {source}): start what should "
            "listen there, or fix the URL"
        )
    elif kinds <= {"network"}:
        hint = f"does {host} resolve? {check}"
    else:
        hint = f"is {host} reachable from here? {check}"
    return NetworkError(
        f"no route answered at {report.base_url} ({len(probed)} probed): {'; '.join(causes)}",
        hint=hint,
    )


async def run_probe(
    resolved: ResolvedConfig,
    client: aiohttp.ClientSession,
    options: ProbeOptions,
    on_progress: ProgressCallback | None = None,
) -> ProbeReport:
    """Plan from the config and options, then probe over ``client``."""
    return await probe_routes(plan_probe(resolved, options), client, on_progress)


def run_plan(plan: ProbePlan, on_progress: ProgressCallback | None = None) -> ProbeReport:
    """Probe a plan from synchronous code, over a client from :func:`make_client`."""

    async def main() -> ProbeReport:
        async with make_client(plan.settings.concurrency, plan.settings.timeout_s) as client:
            return await probe_routes(plan, client, on_progress)

    return asyncio.run(main())


def probe_environment(
    resolved: ResolvedConfig,
    options: ProbeOptions,
    on_progress: ProgressCallback | None = None,
) -> ProbeReport:
    """Plan and probe an environment from synchronous code (``doctor``)."""
    return run_plan(plan_probe(resolved, options), on_progress)


# --------------------------------------------------------------------------------------------
# Aggregation


def _route_result(
    target: ProbeTarget,
    via: list[_Attempt],
    direct: list[_Attempt],
    settings: ProbeSettings,
) -> RouteResult:
    seen = _observe(target.url, via)
    problems: list[str] = []
    if seen.verdict != "json":
        count = seen.verdict_counts.get(seen.verdict, 0)
        share = f" ({count} of {seen.attempts} answers)" if count != seen.attempts else ""
        problems.append(f"{seen.verdict}{share}: {seen.reason}")
    slow = seen.latency_p95_ms is not None and seen.latency_p95_ms > settings.max_latency_ms
    if slow:
        which = "latency" if seen.attempts == 1 else "p95 latency"
        problems.append(
            f"{which} {seen.latency_p95_ms:.0f} ms is over the {settings.max_latency_ms} ms limit"
        )
    reasons = Counter(
        (a.headers or {}).get("x-code24-fallback-reason") or UNKNOWN_REASON
        for a in via
        if a.fallback
    )
    warnings: list[str] = []
    for reason, count in reasons.items():
        share = f", {count} of {len(via)} answers" if count != len(via) else ""
        said = f"answered by the dispatcher's fallback ({reason}{share})"
        if reason in NOT_SERVING_REASONS:
            problems.append(f"{said}: the worker {target.worker} is not serving")
        elif settings.fail_on_fallback:
            problems.append(said)
        else:
            warnings.append(f"{said}: the worker answered, but not with JSON")
    refused = next((code for a in via if (code := _refusal(a)) is not None), None)
    if refused is not None:
        why = (
            ": the probe sample does not match the deployed route table"
            if refused == "route_not_found"
            else ""
        )
        problems.append(f"the dispatcher refused the request itself ({refused}){why}")
    return RouteResult(
        **seen.model_dump(),
        route=target.route,
        worker=target.worker,
        method=target.method,
        path=target.path,
        outcome="fail" if problems else "pass",
        slow=slow,
        problems=problems,
        warnings=warnings,
        fallback_reasons=dict(reasons),
        refused=refused,
        direct=_observe(target.direct_url, direct) if target.direct_url else None,
    )


def _refusal(attempt: _Attempt) -> str | None:
    """The reason code of an answer the dispatcher made without any worker, else None.

    The dispatcher's refusals carry its request id but no ``X-Code24-Worker``, and the error
    envelope ``{"error": {"code": ...}}`` as a 4xx/5xx JSON body.
    """
    headers = attempt.headers or {}
    status = attempt.status or 0
    if status < 400 or "x-code24-request-id" not in headers or "x-code24-worker" in headers:
        return None
    try:
        document = json.loads(attempt.body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _observe(url: str | None, attempts: list[_Attempt]) -> Observation:
    # The worst answer stands for the route; among equals, a fallback (the thing to explain).
    shown = min(attempts, key=lambda a: (_SEVERITY[a.verdict], not a.fallback))
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.verdict] = counts.get(attempt.verdict, 0) + 1
    answered = sorted(a.latency_ms for a in attempts if a.error is None)
    headers = shown.headers or {}
    # None: no dispatcher said either way (a direct answer, or no answer at all).
    fallback = shown.fallback if "x-code24-fallback" in headers else None
    if shown.classification is not None:
        verdict: ProbeVerdict = shown.classification.verdict
        reason = shown.classification.reason
    else:
        verdict, reason = "error", shown.error_reason
    return Observation(
        url=url,
        verdict=verdict,
        reason=reason,
        cloudflare_error=shown.classification.cloudflare_error if shown.classification else None,
        error=shown.error,
        status=shown.status,
        content_type=headers.get("content-type"),
        x_code24_worker=headers.get("x-code24-worker"),
        fallback=fallback,
        fallback_reason=headers.get("x-code24-fallback-reason") if fallback else None,
        cf_ray=headers.get("cf-ray"),
        request_id=headers.get("x-code24-request-id"),
        latency_p50_ms=_percentile(answered, 0.50),
        latency_p95_ms=_percentile(answered, 0.95),
        attempts=len(attempts),
        verdict_counts=counts,
        fallback_count=sum(a.fallback for a in attempts),
        body_excerpt=excerpt(shown.body) if shown.error is None else None,
    )


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``None`` for no samples)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 1)


def excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body as one line of text, for reports."""
    text = " ".join(body[: limit * 4].decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
