"""Send every route's sample request and say, per route, whether the answer is JSON.

The verdict of an answer comes from :func:`code24ctl.dispatch.classify.classify_answer`, the
very function behind ``serve``'s fallbacks (and mirrored by the JavaScript dispatcher); this
module only adds ``error`` (no answer at all: refused, reset, timeout) and ``skipped`` (a route
without a ``probe`` sample in the config).

Three layers, so the CLI, ``doctor`` and the benchmark share one engine:

* :func:`~code24ctl.probe.plan.plan_probe` (pure, ``probe/plan.py``): config + options ->
  a ``ProbePlan`` (what to send where), or a :class:`~code24ctl.errors.UsageError`;
* :func:`probe_routes` / :func:`run_probe` (async, here): send the plan's requests over an
  injected ``aiohttp.ClientSession`` at most ``concurrency`` at a time (one attempt is
  ``probe/send.py``) and turn the attempts into a ``ProbeReport`` (``probe/report.py``);
* :func:`run_plan` / :func:`probe_environment` (sync): build the client with
  :func:`~code24ctl.probe.send.make_client`, the one place a probe client is made, and run
  the above.

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

Every answer of the dispatcher names the version that made it (``X-Code24-Dispatcher-Version``,
docs/dispatch.md D6). A probe with a ``version`` (the ``Cloudflare-Workers-Version-Overrides``
header of ``probe --version`` and of a canary) first waits, at most ``version_wait_s``, for one
answer from that version: Cloudflare can take a couple of seconds to apply an override after a
deployment change, and routes a request whose override is not applied by the percentages,
without an error (developers.cloudflare.com/workers/configuration/versions-and-deployments/
version-overrides/). Then any answer from another version fails its route
(``version_not_applied``). Without a ``version``, the report counts the answers per version, so
a split is visible.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from code24ctl.config import ResolvedConfig
from code24ctl.probe.plan import ProbeOptions, ProbePlan, ProbeSettings, ProbeTarget, plan_probe
from code24ctl.probe.report import (
    Observation,
    ProbeReport,
    ProbeSummary,
    ProbeVerdict,
    RouteResult,
    VersionWait,
    fallback_summary,
)
from code24ctl.probe.send import (
    NO_VERSION,
    Attempt,
    WaitCallback,
    make_client,
    send,
    wait_for_version,
)

if TYPE_CHECKING:
    import aiohttp

ProgressCallback = Callable[[int, int], None]

EXCERPT_CHARS = 200
#: The failure reason of an answer from another dispatcher version than the one asked for.
VERSION_NOT_APPLIED = "version_not_applied"

# Fallback reasons that mean the worker behind the route is not serving: failures by default.
NOT_SERVING_REASONS = frozenset(
    {"worker_not_found", "worker_error", "worker_timeout", "worker_over_limit", "internal_error"}
)
# A fallback without a reason header is counted under this name.
UNKNOWN_REASON = "unknown"

# The order in which a row picks the answer it shows when --repeat got different answers:
# the worst one, so a flaky route is never reported by its good answers.
_SEVERITY: dict[str, int] = {"error": 0, "html": 1, "not-json": 2, "empty": 3, "json": 4}


async def probe_routes(
    plan: ProbePlan,
    client: aiohttp.ClientSession,
    on_progress: ProgressCallback | None = None,
    *,
    version_wait: VersionWait | None = None,
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

    async def run(index: int, url: str) -> Attempt:
        nonlocal done
        attempt = await send(client, plan.targets[index], url, settings.timeout_s, semaphore)
        done += 1
        if on_progress is not None:
            on_progress(done, total)
        return attempt

    started = time.perf_counter()
    attempts = await asyncio.gather(*(run(index, url) for index, _direct, url in jobs))
    duration_ms = (time.perf_counter() - started) * 1000

    via: list[list[Attempt]] = [[] for _ in plan.targets]
    direct: list[list[Attempt]] = [[] for _ in plan.targets]
    for (index, is_direct, _url), attempt in zip(jobs, attempts, strict=True):
        (direct if is_direct else via)[index].append(attempt)

    rows: dict[str, RouteResult] = {}
    for index, target in enumerate(plan.targets):
        rows[target.route] = _route_result(
            target, via[index], direct[index], settings, plan.version
        )
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
        version_not_applied=sum(row.version_not_applied for row in ordered),
    )
    versions: Counter[str] = Counter()
    for row in ordered:
        versions.update(row.dispatcher_versions)
    notes = list(plan.notes)
    if set(versions) - {NO_VERSION, "local"}:
        counted = ", ".join(f"{v} {n}" for v, n in versions.most_common())
        notes.append(f"answers by dispatcher version: {counted}")
    if version_wait is not None and not version_wait.applied:
        notes.append(
            f"version {version_wait.version} did not answer within {version_wait.limit_s:g} s "
            f"({version_wait.attempts} requests): the override was not applied (is the version "
            "in the current deployment?)"
        )
    line = fallback_summary(ordered)
    if line:
        notes.append(line)
    return ProbeReport(
        environment=plan.environment,
        base_url=plan.base_url,
        ok=summary.failed == 0,
        summary=summary,
        version=plan.version,
        version_wait=version_wait,
        dispatcher_versions=dict(versions.most_common()),
        settings=settings,
        duration_ms=round(duration_ms, 1),
        notes=notes,
        routes=ordered,
    )


async def run_probe(
    resolved: ResolvedConfig,
    client: aiohttp.ClientSession,
    options: ProbeOptions,
    on_progress: ProgressCallback | None = None,
) -> ProbeReport:
    """Plan from the config and options, then probe over ``client``."""
    plan = plan_probe(resolved, options)
    waited = await wait_for_version(plan, client)
    return await probe_routes(plan, client, on_progress, version_wait=waited)


def run_plan(
    plan: ProbePlan,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
) -> ProbeReport:
    """Probe a plan from synchronous code, over a client from :func:`make_client` (waiting
    for the plan's version first, if it names one)."""

    async def main() -> ProbeReport:
        async with make_client(plan.settings.concurrency, plan.settings.timeout_s) as client:
            waited = await wait_for_version(plan, client, on_wait)
            return await probe_routes(plan, client, on_progress, version_wait=waited)

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
    via: list[Attempt],
    direct: list[Attempt],
    settings: ProbeSettings,
    version: str | None = None,
) -> RouteResult:
    seen = _observe(target.url, via)
    problems: list[str] = []
    answered = [a.dispatcher_version for a in via if a.dispatcher_version is not None]
    others = Counter(v for v in answered if v != version)
    not_applied = version is not None and bool(others)
    if not_applied:
        named = ", ".join(f"{v} \u00d7{n}" if n > 1 else v for v, n in others.most_common())
        problems.append(
            f"{VERSION_NOT_APPLIED}: {sum(others.values())} of {len(answered)} answers came "
            f"from another dispatcher version ({named}), not {version}"
        )
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
        version_not_applied=not_applied,
        direct=_observe(target.direct_url, direct, dispatcher=False) if target.direct_url else None,
    )


def _refusal(attempt: Attempt) -> str | None:
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


def _observe(url: str | None, attempts: list[Attempt], *, dispatcher: bool = True) -> Observation:
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
        request_id=shown.request_id,
        request_ids=[a.request_id for a in attempts if a.request_id],
        dispatcher_version=shown.dispatcher_version if dispatcher else None,
        dispatcher_versions=dict(
            Counter(v for a in attempts if (v := a.dispatcher_version) is not None).most_common()
        )
        if dispatcher
        else {},
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
