"""Pace API work under Cloudflare's budgets, retry what the API asks us to retry, and bound
how long one call may take.

The API allows 1,200 requests per 5 minutes per user (going over blocks *every* call for five
minutes) and 200 requests per second per IP. Every request the SDK sends goes through one
:class:`PacedTransport`, an ``httpx`` transport wrapping the real one (the way httpx documents
custom transports). For each request it:

- takes a slot from a :class:`Pacer` (every attempt, retries included, so retries count against
  the budget too); the pacer also reads the API's own ``Ratelimit`` / ``Ratelimit-Policy``
  headers when they come;
- retries 429 / 5xx answers (HTML edge pages included) and network failures per
  :class:`RetryPolicy`, honouring ``Retry-After`` (a 429 pauses every thread: the budget is
  shared);
- keeps one call, retries and waits included, within the policy's deadline, logging progress
  while it waits;
- refuses a 2xx answer that is not what the v4 API sends (an HTML page from a proxy or a captive
  portal, an empty body, a 204), so no command reads an answer it cannot trust.

The SDK's own retries are switched off (``max_retries=0``): they know neither the budget nor the
other threads. The clock and the sleep are injected (:class:`Clock`), so tests run the retry
paths without waiting.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import httpx

from code24ctl.errors import UsageError
from code24ctl.redact import scrub_body

if TYPE_CHECKING:
    from cloudflare import Cloudflare

log = logging.getLogger(__name__)

#: The API's documented budget: requests per window, per user.
API_BUDGET_REQUESTS = 1200
API_BUDGET_WINDOW_S = 300.0
#: The documented per-IP cap: requests per second, whatever the token.
API_PER_IP_REQUESTS = 200
API_PER_IP_WINDOW_S = 1.0
#: Share of the budget we leave unused: other tools (wrangler, the dashboard) spend it too, and
#: our clock starts a request slightly before the API's clock sees it.
DEFAULT_HEADROOM = 0.1

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527})
#: Methods that are safe to send twice (a 5xx or a broken connection may hide a success).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: Seconds one API call may take, retries included (overrides the policy; tests make it short).
API_TIMEOUT_ENV_VAR = "CODE24_API_TIMEOUT"


class Clock(Protocol):
    """Where the pacer and the transport read the time and wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep(seconds)``."""
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


@dataclass
class PacerStats:
    """What a pacer has seen so far (read it under no lock: it is for reports only)."""

    sent: int = 0
    waited_s: float = 0.0
    throttled: int = 0  # 429 answers met
    retried: int = 0  # attempts that were retries (any reason)
    server_errors: int = 0  # 5xx answers met
    network_errors: int = 0


@dataclass
class _Window:
    """One sliding window: at most ``limit`` requests in any ``window_s``."""

    limit: int
    window_s: float
    stamps: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        while self.stamps and self.stamps[0] <= now - self.window_s:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return max(self.stamps[0] + self.window_s - now, 0.001)


class Pacer:
    """A thread-safe limiter over sliding windows: the user budget, the per-IP cap, and any
    policy the API announces in ``Ratelimit-Policy``.

    A sliding window is what the API enforces, so a short run may go at full speed and a long
    one settles at ``limit / window_s``. ``pause(seconds)`` holds every thread, which is how a
    429's ``Retry-After`` is honoured by all workers rather than only the one that met it. The
    API's ``Ratelimit`` header (``r`` requests left until ``t`` seconds from now) is obeyed on
    top: once it says none are left, nobody sends until the window resets.
    """

    def __init__(
        self,
        requests: int = API_BUDGET_REQUESTS,
        window_s: float = API_BUDGET_WINDOW_S,
        *,
        headroom: float = DEFAULT_HEADROOM,
        per_second: int | None = API_PER_IP_REQUESTS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if requests <= 0 or window_s <= 0:
            raise ValueError("a pacer needs a positive budget and window")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.budget = requests
        self.window_s = window_s
        self.headroom = headroom
        self.limit = max(1, int(requests * (1 - headroom)))
        self.stats = PacerStats()
        self._clock = clock
        self._windows: dict[str, _Window] = {"budget": _Window(self.limit, window_s)}
        if per_second is not None:
            self._windows["per-ip"] = _Window(per_second, API_PER_IP_WINDOW_S)
        self._paused_until = 0.0
        self._server_left: int | None = None
        self._server_reset_at = 0.0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """The sustained rate this pacer allows, in requests per second."""
        return min(w.limit / w.window_s for w in self._windows.values())

    def reserve(self) -> float:
        """Take a slot if one is free now (returns 0.0), else return how long to wait for one."""
        with self._lock:
            now = self._clock.monotonic()
            if self._paused_until > now:
                return self._paused_until - now
            if self._server_left is not None:
                if now >= self._server_reset_at:
                    self._server_left = None
                elif self._server_left <= 0:
                    return self._server_reset_at - now
            delay = max(w.wait(now) for w in self._windows.values())
            if delay > 0:
                return delay
            for window in self._windows.values():
                window.stamps.append(now)
            if self._server_left is not None:
                self._server_left -= 1
            self.stats.sent += 1
            return 0.0

    def acquire(self) -> float:
        """Wait until one more request fits every budget, take its slot, return the wait."""
        waited = 0.0
        while True:
            delay = self.reserve()
            if delay == 0.0:
                if waited:
                    with self._lock:
                        self.stats.waited_s += waited
                return waited
            self._clock.sleep(delay)
            waited += delay

    def count(self, what: str) -> None:
        """Add one to a :class:`PacerStats` counter (thread-safe)."""
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (from now), e.g. a 429's ``Retry-After``."""
        with self._lock:
            until = self._clock.monotonic() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until

    def observe(self, headers: httpx.Headers) -> None:
        """Learn from the API's ``Ratelimit`` and ``Ratelimit-Policy`` headers, when sent.

        ``Ratelimit: "default";r=50;t=30``: 50 requests left, the window resets in 30 s.
        ``Ratelimit-Policy: "burst";q=100;w=60``: a policy of 100 requests per 60 s, kept as
        one more sliding window (less our headroom).
        """
        policies = parse_ratelimit(headers.get("ratelimit-policy", ""))
        budgets = parse_ratelimit(headers.get("ratelimit", ""))
        with self._lock:
            now = self._clock.monotonic()
            for name, params in policies:
                quota, window = params.get("q"), params.get("w")
                if quota and window and quota > 0 and window > 0:
                    limit = max(1, int(quota * (1 - self.headroom)))
                    key = f"policy:{name}"
                    held = self._windows.get(key)
                    if held is None or (held.limit, held.window_s) != (limit, float(window)):
                        self._windows[key] = _Window(limit, float(window))
            for _, params in budgets:
                left, reset = params.get("r"), params.get("t")
                if left is None or reset is None or left < 0 or reset < 0:
                    continue
                # The tightest of the named budgets wins.
                if self._server_left is None or left < self._server_left:
                    self._server_left = left
                    self._server_reset_at = now + reset


_ITEM_RE = re.compile(r'^\s*(?:"(?P<quoted>[^"]*)"|(?P<token>[A-Za-z0-9_.*-]+))\s*$')


def parse_ratelimit(value: str) -> list[tuple[str, dict[str, int]]]:
    """Parse a ``Ratelimit`` / ``Ratelimit-Policy`` value into ``(name, {param: int})`` items.

    The values are structured-field lists (``"default";r=50;t=30, "burst";r=5;t=1``); items or
    parameters that do not parse are skipped, never an error: the header is advice.
    """
    items: list[tuple[str, dict[str, int]]] = []
    for raw in value.split(","):
        name_part, *params = raw.split(";")
        named = _ITEM_RE.match(name_part)
        if not named or not raw.strip():
            continue
        found: dict[str, int] = {}
        for param in params:
            key, sep, number = param.strip().partition("=")
            if sep and number.strip().isdigit() and len(number.strip()) <= 9:
                found[key.strip().lower()] = int(number.strip())
        items.append((named.group("quoted") or named.group("token") or "", found))
    return items


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry an answer the API says may succeed later, and how long
    one call may take.

    429: wait ``Retry-After`` (all threads, through the pacer) or back off. 5xx (JSON or an HTML
    edge page) and network failures: back off exponentially with jitter, only for idempotent
    methods. A ``Retry-After`` longer than ``max_retry_after_s`` or than what is left of
    ``total_s`` is not waited for: the call fails and says so. ``connect_timeout_s`` and
    ``read_timeout_s`` bound each attempt; ``total_s`` bounds the call, retries included.
    """

    max_attempts: int = 10
    # A refused connection rarely heals in seconds (wrong CLOUDFLARE_BASE_URL, network down):
    # fail fast instead of spending ~40 s of backoff before saying so.
    max_connect_attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 20.0
    max_retry_after_s: float = 330.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    total_s: float = 900.0
    #: How often to say "still waiting" during one long wait.
    progress_every_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based): exponential, 'equal jitter'."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def with_total(self, seconds: float) -> RetryPolicy:
        """This policy with one call bounded by ``seconds`` (each attempt by as much)."""
        return replace(
            self,
            total_s=seconds,
            connect_timeout_s=min(self.connect_timeout_s, seconds),
            read_timeout_s=min(self.read_timeout_s, seconds),
            progress_every_s=min(self.progress_every_s, max(seconds / 4, 0.05)),
        )


def interactive_policy() -> RetryPolicy:
    """Retries for one-shot commands (namespace, deploy, doctor): a short 429 burst or 5xx blip
    is ridden out as in bulk work, but a failing API is reported in seconds, not a minute."""
    return RetryPolicy(max_attempts=4, max_delay_s=4.0, read_timeout_s=30.0, total_s=60.0)


def api_timeout_from_env(policy: RetryPolicy) -> RetryPolicy:
    """``policy`` bounded by ``CODE24_API_TIMEOUT`` seconds per call, when that is set."""
    raw = os.environ.get(API_TIMEOUT_ENV_VAR, "").strip()
    if not raw:
        return policy
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise UsageError(
            f"{API_TIMEOUT_ENV_VAR} must be a number of seconds between 0 and 86400, not {raw!r}"
        )
    return policy.with_total(seconds)


def retry_after_seconds(headers: httpx.Headers | dict[str, str]) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``, in seconds, if sent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --------------------------------------------------------------------------------------------
# what the transport raises (the SDK wraps it; client.api_call unwraps it into our errors)


class DeadlineExceeded(Exception):
    """One API call ran out of time; says what it was waiting for."""

    def __init__(self, request: httpx.Request, seconds: float, waiting_for: str) -> None:
        self.method = request.method
        self.host = request.url.host
        self.path = request.url.path
        self.seconds = seconds
        self.waiting_for = waiting_for
        super().__init__(
            f"no answer from the Cloudflare API at {self.host} within {seconds:g} s "
            f"({waiting_for}; {self.method} {self.path})"
        )


class InvalidAnswer(Exception):
    """A 2xx answer that is not what the v4 API sends (an HTML page, an empty body, a 204)."""

    def __init__(self, request: httpx.Request, status: int, content_type: str, what: str) -> None:
        self.method = request.method
        self.host = request.url.host
        self.path = request.url.path
        self.status = status
        self.content_type = content_type
        self.what = what
        shown = content_type or "no content type"
        super().__init__(
            f"the answer from {self.host} is not a Cloudflare API answer: HTTP {status}, "
            f"{shown}, {what}"
        )


class FailedAnswer(Exception):
    """A 2xx whose envelope says ``"success": false``: an API error, whatever the status."""

    def __init__(self, request: httpx.Request, status: int, body: dict[str, object]) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{request.method} {request.url.path}: HTTP {status}, success false")


#: Answers that are a Worker's code, not an envelope (downloads of script content).
_RAW_CONTENT_RE = re.compile(r"/content(?:/v2)?/?$")
#: The Analytics Engine SQL API answers ClickHouse's JSON (``{meta, data, rows}``), no envelope.
_SQL_API_RE = re.compile(r"/analytics_engine/sql/?$")


def check_answer(request: httpx.Request, response: httpx.Response) -> None:
    """Raise :class:`InvalidAnswer` unless a 2xx ``response`` is a v4 API answer, and
    :class:`FailedAnswer` if that answer says it failed.

    The v4 API answers JSON objects (the envelope); a Worker's content comes as multipart or
    as its script. Anything else on a 2xx is a proxy, a captive portal or a wrong base URL.
    """
    status = response.status_code
    if not 200 <= status < 300:
        return
    content_type = response.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if _RAW_CONTENT_RE.search(request.url.path) and status == 200 and kind and "html" not in kind:
        return
    if status == 204:
        raise InvalidAnswer(request, status, content_type, "no content")
    if kind.startswith("multipart/"):
        return
    body = response.read()
    if not body.strip():
        raise InvalidAnswer(request, status, content_type, "an empty body")
    if not kind.endswith("json"):
        looks = "an HTML page" if body.lstrip()[:1] == b"<" else "not JSON"
        raise InvalidAnswer(request, status, content_type, looks)
    try:
        parsed = json.loads(body)
    except ValueError:
        raise InvalidAnswer(request, status, content_type, "JSON that does not parse") from None
    if _SQL_API_RE.search(request.url.path):
        if isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
            return
        raise InvalidAnswer(request, status, content_type, "JSON without the SQL API's data")
    if not isinstance(parsed, dict) or "success" not in parsed:
        raise InvalidAnswer(request, status, content_type, "JSON without the v4 envelope")
    if parsed.get("success") is False:
        raise FailedAnswer(request, status, parsed)


# -vv shows bodies up to this many characters (a module upload is megabytes).
BODY_LOG_CHARS = 2000


def log_exchange(request: httpx.Request, response: httpx.Response, elapsed_s: float) -> None:
    """-vv: one request and its answer, bodies included, secrets scrubbed, with the timing."""

    response.read()
    log.debug(
        "%s %s -> HTTP %d in %.0f ms\n  request body: %s\n  response body: %s",
        request.method,
        request.url.path,
        response.status_code,
        elapsed_s * 1000,
        scrub_body(_body_text(request.headers, request.content), BODY_LOG_CHARS),
        scrub_body(_body_text(response.headers, response.content), BODY_LOG_CHARS),
    )


def _body_text(headers: httpx.Headers, content: bytes) -> str:
    if not content:
        return "(none)"
    kind = headers.get("content-type", "")
    if "json" not in kind and not kind.startswith("text/"):
        return f"({len(content)} bytes of {kind.split(';')[0] or 'data'})"
    return content.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# the transport


class _CallTime:
    """How much of one call's time is spent: waits on the injected clock plus network time."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self.spent = 0.0

    def spend(self, seconds: float) -> None:
        self.spent += max(0.0, seconds)

    def left(self) -> float:
        return self.total_s - self.spent


class PacedTransport(httpx.BaseTransport):
    """Wraps the real transport: paces, retries, bounds and checks every request."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        pacer: Pacer,
        policy: RetryPolicy,
        *,
        clock: Clock = SYSTEM_CLOCK,
        owns_inner: bool = True,
    ) -> None:
        self.inner = inner
        self.pacer = pacer
        self.policy = policy
        self.clock = clock
        self.owns_inner = owns_inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pacer, retrying per the policy, within its deadline."""
        policy = self.policy
        self.pacer.acquire()
        call = _CallTime(policy.total_s)
        retries = 0
        while True:
            if retries:
                self.pacer.count("retried")
            try:
                response = self._attempt(request, call)
            except httpx.TransportError as exc:
                self.pacer.count("network_errors")
                retries += 1
                limit = (
                    policy.max_connect_attempts
                    if isinstance(exc, httpx.ConnectError)
                    else policy.max_attempts
                )
                if isinstance(exc, httpx.TimeoutException) and call.left() <= 0:
                    waiting = (
                        "waiting to connect"
                        if isinstance(exc, httpx.ConnectTimeout)
                        else "connected, waiting for the answer"
                    )
                    raise DeadlineExceeded(request, policy.total_s, waiting) from exc
                if request.method not in IDEMPOTENT_METHODS or retries >= limit:
                    raise
                delay = policy.backoff(retries)
                if delay >= call.left():
                    raise
                log.info("%s %s: %s; retry in %.2fs", request.method, request.url.path,
                         type(exc).__name__, delay)  # fmt: skip
                self.clock.sleep(delay)
                call.spend(delay + self.pacer.acquire())
                continue
            self.pacer.observe(response.headers)
            status = response.status_code
            if status not in RETRYABLE_STATUSES:
                try:
                    check_answer(request, response)
                except InvalidAnswer:
                    response.close()
                    raise
                return response
            self.pacer.count("throttled" if status == 429 else "server_errors")
            retries += 1
            retryable = status == 429 or request.method in IDEMPOTENT_METHODS
            if not retryable or retries >= policy.max_attempts:
                return response
            hinted = retry_after_seconds(response.headers)
            if hinted is not None and hinted > policy.max_retry_after_s:
                return response
            delay = hinted if hinted is not None else policy.backoff(retries)
            if delay >= call.left():
                return response  # waiting would overrun the call's deadline: report this one
            response.read()
            response.close()
            # From the second retry on, say so without -v: a long silent wait looks hung.
            log.log(
                logging.WARNING if retries >= 2 else logging.INFO,
                "%s %s: HTTP %d; retry %d of %d in %.1fs",
                request.method,
                request.url.path,
                status,
                retries,
                policy.max_attempts - 1,
                delay,
            )
            if status == 429:
                self.pacer.pause(delay)  # everyone waits: the budget is shared
            else:
                self.clock.sleep(delay)
                call.spend(delay)
            call.spend(self.pacer.acquire())

    def _attempt(self, request: httpx.Request, call: _CallTime) -> httpx.Response:
        """One attempt, its timeouts clamped to what is left of the call's deadline."""
        policy = self.policy
        left = max(call.left(), 0.001)
        timeouts = {
            "connect": min(policy.connect_timeout_s, left),
            "read": min(policy.read_timeout_s, left),
            "write": min(policy.read_timeout_s, left),
            "pool": min(policy.connect_timeout_s, left),
        }
        request.extensions["timeout"] = timeouts
        done = threading.Event()
        ticker = threading.Thread(
            target=self._progress, args=(request, done), name="code24ctl-wait", daemon=True
        )
        ticker.start()
        # Time on the network is real whatever the injected clock says; a timeout is charged
        # the full time it stands for.
        began = time.monotonic()
        charge = 0.0
        try:
            response = self.inner.handle_request(request)
            if log.isEnabledFor(logging.DEBUG):
                log_exchange(request, response, time.monotonic() - began)
            return response
        except httpx.TimeoutException as exc:
            charge = timeouts["connect" if isinstance(exc, httpx.ConnectTimeout) else "read"]
            raise
        finally:
            done.set()
            call.spend(max(time.monotonic() - began, charge))

    def _progress(self, request: httpx.Request, done: threading.Event) -> None:
        # Real time on purpose: this reports a wait on the network, which no fake clock drives.
        every = self.policy.progress_every_s
        waited = 0.0
        while not done.wait(every):
            waited += every
            log.warning(
                "still waiting for %s (%s %s): %.1f s of at most %g s",
                request.url.host,
                request.method,
                request.url.path,
                waited,
                self.policy.total_s,
            )

    def close(self) -> None:
        """Close the wrapped transport if this one made it."""
        if self.owns_inner:
            self.inner.close()


# --------------------------------------------------------------------------------------------
# building paced SDK clients

#: The transport of every client this module paced (weakly held: a closed client goes away).
_TRANSPORTS: weakref.WeakKeyDictionary[Cloudflare, PacedTransport] = weakref.WeakKeyDictionary()


def paced_http_client(transport: PacedTransport) -> httpx.Client:
    """An httpx client with the SDK's defaults over ``transport``."""
    from cloudflare import DefaultHttpxClient

    client: httpx.Client = DefaultHttpxClient(transport=transport)
    return client


def register(client: Cloudflare, transport: PacedTransport) -> Cloudflare:
    """Remember that ``client`` sends through ``transport`` (for :func:`pacer_of`)."""
    _TRANSPORTS[client] = transport
    return client


def paced_client(
    client: Cloudflare,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> Cloudflare:
    """``client`` paced by ``pacer`` under ``policy``.

    A client that is already paced is returned as is when neither is given (or both are the
    ones it uses), so nested work (``apply`` calling ``bind``) never counts a call twice;
    otherwise the copy shares its real transport and uses the given pacer and policy. A client
    not built by :func:`code24ctl.cloudflare.client.make_client` gets httpx's own transport.
    """
    held = _TRANSPORTS.get(client)
    if held is not None:
        if (pacer is None or pacer is held.pacer) and (policy is None or policy == held.policy):
            return client
        transport = PacedTransport(
            held.inner,
            pacer or held.pacer,
            policy or held.policy,
            clock=held.clock,
            owns_inner=False,
        )
    else:
        transport = PacedTransport(
            httpx.HTTPTransport(), pacer or default_pacer(), policy or RetryPolicy()
        )
    copy = client.with_options(http_client=paced_http_client(transport), max_retries=0)
    return register(copy, transport)


def pacer_of(client: Cloudflare) -> Pacer | None:
    """The pacer a client built by :func:`paced_client` or ``make_client`` goes through."""
    held = _TRANSPORTS.get(client)
    return held.pacer if held is not None else None


_default_lock = threading.Lock()
_default: Pacer | None = None


def default_pacer() -> Pacer:
    """The process-wide pacer for the real API budget (shared by every command in a process)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pacer()
        return _default
