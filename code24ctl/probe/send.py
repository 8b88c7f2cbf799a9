"""Sending a probe's requests: the one aiohttp client, one attempt, and the version wait.

:func:`make_client` is the one place a probe client is made; :func:`send` makes one request
and returns an :class:`Attempt` (an answer, classified, or a failure described in a sentence);
:func:`wait_for_version` sends the first request until the asked-for dispatcher version answers.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from code24ctl import __version__
from code24ctl.dispatch.classify import Classification, classify_answer
from code24ctl.probe.plan import ProbePlan, ProbeTarget
from code24ctl.probe.report import ErrorKind, VersionWait

if TYPE_CHECKING:
    import aiohttp


# (attempts so far, seconds waited, the version that answered the last one or None)
WaitCallback = Callable[[int, float, str | None], None]


USER_AGENT = f"code24ctl-probe/{__version__}"


#: Seconds between two requests while waiting for the version.
VERSION_POLL_S = 0.5


#: How an answer without ``X-Code24-Dispatcher-Version`` (a dispatcher uploaded before it, or
#: not a dispatcher) is counted.
NO_VERSION = "none"


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
    "x-code24-dispatcher-version",
    "cf-ray",
)


@dataclass(frozen=True)
class Attempt:
    latency_ms: float
    classification: Classification | None = None
    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes = b""
    error: ErrorKind | None = None
    error_reason: str = ""
    sent_request_id: str | None = None

    @property
    def request_id(self) -> str | None:
        """The dispatcher's id for this request, else the one the probe sent."""
        answered = (self.headers or {}).get("x-code24-request-id")
        return answered or self.sent_request_id

    @property
    def verdict(self) -> str:
        return self.classification.verdict if self.classification else "error"

    @property
    def fallback(self) -> bool:
        return self.headers is not None and (
            self.headers.get("x-code24-fallback", "").strip().lower() == "true"
        )

    @property
    def dispatcher_version(self) -> str | None:
        """The version that answered; None without an answer."""
        if self.headers is None:
            return None
        return self.headers.get("x-code24-dispatcher-version") or NO_VERSION


async def send(
    client: aiohttp.ClientSession,
    target: ProbeTarget,
    url: str,
    timeout_s: float,
    semaphore: asyncio.Semaphore,
) -> Attempt:
    import aiohttp

    # Without a configured content type a raw body goes without one, as a plain fetch() sends
    # it (aiohttp would otherwise label bytes application/octet-stream).
    skip = () if _has_header(target.headers, "content-type") else ("Content-Type",)
    headers = dict(target.headers)
    sent_id: str | None = None
    if not _has_header(headers, "x-request-id"):
        # The dispatcher reuses a tame X-Request-Id as the request's id (dispatcher.js
        # SANE_REQUEST_ID), so even an answer without X-Code24-Request-Id can be looked up.
        sent_id = headers["X-Request-Id"] = f"probe-{secrets.token_hex(8)}"
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
                    headers=headers,
                    skip_auto_headers=skip,
                    allow_redirects=False,
                ) as response,
            ):
                body = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            kind, reason = _describe_failure(exc, url, timeout_s)
            latency = (time.perf_counter() - started) * 1000
            return Attempt(latency, error=kind, error_reason=reason, sent_request_id=sent_id)
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
    return Attempt(
        latency,
        classification=classification,
        status=response.status,
        headers=headers,
        body=body,
        sent_request_id=sent_id,
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


async def wait_for_version(
    plan: ProbePlan,
    client: aiohttp.ClientSession,
    on_wait: WaitCallback | None = None,
) -> VersionWait | None:
    """Send the plan's first request until an answer comes from ``plan.version``, at most
    ``plan.version_wait_s`` seconds (None when the plan asks for no version)."""
    if plan.version is None:
        return None
    target = plan.targets[0]
    semaphore = asyncio.Semaphore(1)
    started = time.perf_counter()
    attempts = 0
    while True:
        attempt = await send(client, target, target.url, plan.settings.timeout_s, semaphore)
        attempts += 1
        waited = time.perf_counter() - started
        seen = attempt.dispatcher_version
        if on_wait is not None:
            on_wait(attempts, waited, seen)
        if seen == plan.version:
            return VersionWait(
                version=plan.version,
                applied=True,
                attempts=attempts,
                waited_ms=round(waited * 1000, 1),
                limit_s=plan.version_wait_s,
            )
        if waited + VERSION_POLL_S > plan.version_wait_s:
            return VersionWait(
                version=plan.version,
                applied=False,
                attempts=attempts,
                waited_ms=round(waited * 1000, 1),
                limit_s=plan.version_wait_s,
            )
        await asyncio.sleep(VERSION_POLL_S)


#: While waiting for a version, a progress line at most this often (seconds).
WAIT_LINE_S = 2.0


def wait_lines(say: Callable[[str], None], version: str, limit_s: float) -> WaitCallback:
    """A :data:`WaitCallback` that tells ``say`` (one line each) that the wait started, how it
    goes every :data:`WAIT_LINE_S` seconds, and how it ended."""
    last = [-WAIT_LINE_S]

    def on_wait(attempts: int, waited: float, seen: str | None) -> None:
        if attempts == 1:
            say(
                f"waiting up to {limit_s:g} s for version {version} to answer through the "
                "version override"
            )
            last[0] = 0.0
        if seen == version:
            say(f"version {version} answered after {waited:.1f} s ({attempts} requests)")
        elif waited - last[0] >= WAIT_LINE_S:
            last[0] = waited
            say(f"  {waited:.1f} s: still answered by version {seen or 'none (no answer)'}")

    return on_wait
