"""Pace bulk API work under Cloudflare's budget, and retry what the API asks us to retry.

The API allows 1,200 requests per 5 minutes per user; going over blocks *every* call for five
minutes. So bulk commands (bind, unbind, workers, secret put) send every request, reads included,
through one :class:`Pacer`, and retry 429 / 5xx answers (HTML edge pages included) and network
failures with :class:`RetryPolicy`, honouring ``Retry-After``. Every attempt, retries included,
takes a slot from the pacer, so retries count against the budget too.

The pacing lives in the HTTP client the SDK is given (:func:`paced_client`), not around each SDK
call, so no call can slip past it; the SDK's own retries are switched off (``max_retries=0``)
because they know neither the budget nor the other threads.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from cloudflare import Cloudflare

log = logging.getLogger(__name__)

#: The API's documented budget: requests per window, per user.
API_BUDGET_REQUESTS = 1200
API_BUDGET_WINDOW_S = 300.0
#: Share of the budget we leave unused: other tools (wrangler, the dashboard) spend it too, and
#: our clock starts a request slightly before the API's clock sees it.
DEFAULT_HEADROOM = 0.1

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527})
#: Methods that are safe to send twice (a 5xx or a broken connection may hide a success).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass
class PacerStats:
    """What a pacer has seen so far (read it under no lock: it is for reports only)."""

    sent: int = 0
    waited_s: float = 0.0
    throttled: int = 0  # 429 answers met
    retried: int = 0  # attempts that were retries (any reason)
    server_errors: int = 0  # 5xx answers met
    network_errors: int = 0


class Pacer:
    """A thread-safe sliding-window limiter: at most ``limit`` requests in any ``window_s``.

    A sliding window is exactly what the API enforces, so a short run may go at full speed and a
    long one settles at ``limit / window_s``. ``pause(seconds)`` holds every thread, which is how
    a 429's ``Retry-After`` is honoured by all workers rather than only the one that met it.
    """

    def __init__(
        self,
        requests: int = API_BUDGET_REQUESTS,
        window_s: float = API_BUDGET_WINDOW_S,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests <= 0 or window_s <= 0:
            raise ValueError("a pacer needs a positive budget and window")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.budget = requests
        self.window_s = window_s
        self.limit = max(1, int(requests * (1 - headroom)))
        self.stats = PacerStats()
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._paused_until = 0.0
        self._cond = threading.Condition()

    @property
    def rate(self) -> float:
        """The sustained rate this pacer allows, in requests per second."""
        return self.limit / self.window_s

    def reserve(self) -> float:
        """Take a slot if one is free now (returns 0.0), else return how long to wait for one."""
        with self._cond:
            now = self._clock()
            while self._stamps and self._stamps[0] <= now - self.window_s:
                self._stamps.popleft()
            if self._paused_until > now:
                return self._paused_until - now
            if len(self._stamps) < self.limit:
                self._stamps.append(now)
                self.stats.sent += 1
                return 0.0
            return max(self._stamps[0] + self.window_s - now, 0.001)

    def acquire(self) -> float:
        """Block until one more request fits the budget, take its slot, return the wait."""
        waited = 0.0
        while True:
            delay = self.reserve()
            if delay == 0.0:
                if waited:
                    with self._cond:
                        self.stats.waited_s += waited
                return waited
            with self._cond:
                # Waiting on the condition lets pause() wake us early to re-check.
                start = time.monotonic()
                self._cond.wait(timeout=delay)
                waited += time.monotonic() - start

    def count(self, what: str) -> None:
        """Add one to a :class:`PacerStats` counter (thread-safe)."""
        with self._cond:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (from now), e.g. a 429's ``Retry-After``."""
        with self._cond:
            until = self._clock() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
            self._cond.notify_all()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry an answer the API says may succeed later.

    429: wait ``Retry-After`` (all threads, through the pacer) or back off. 5xx (JSON or an HTML
    edge page) and network failures: back off exponentially with jitter, only for idempotent
    methods. A ``Retry-After`` longer than ``max_retry_after_s`` is not waited for: the call fails
    and says so.
    """

    max_attempts: int = 10
    # A refused connection rarely heals in seconds (wrong CLOUDFLARE_BASE_URL, network down):
    # fail fast instead of spending ~40 s of backoff before saying so.
    max_connect_attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 20.0
    max_retry_after_s: float = 330.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based): exponential, 'equal jitter'."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


def interactive_policy() -> RetryPolicy:
    """Retries for one-shot commands (namespace, deploy, doctor): a short 429 burst or 5xx blip
    is ridden out as in bulk work, but a failing API is reported in seconds, not a minute."""
    return RetryPolicy(max_attempts=4, max_delay_s=4.0)


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


# -vv shows bodies up to this many characters (a module upload is megabytes).
BODY_LOG_CHARS = 2000


def log_exchange(request: httpx.Request, response: httpx.Response, elapsed_s: float) -> None:
    """-vv: one request and its answer, bodies included, secrets scrubbed, with the timing."""
    from code24ctl.redact import scrub_body

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


def _http_client_class() -> type[httpx.Client]:
    from cloudflare import DefaultHttpxClient

    return DefaultHttpxClient


def make_paced_http_client(
    pacer: Pacer,
    policy: RetryPolicy | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Client:
    """An httpx client (SDK defaults) that paces every request and retries per ``policy``."""
    import httpx

    base = _http_client_class()
    retry = policy or RetryPolicy()

    class PacedHttpxClient(base):  # type: ignore[valid-type,misc]
        """Every ``send`` takes a pacer slot per attempt and retries what may succeed later."""

        code24_pacer = pacer
        code24_owns_transport = transport is None

        def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            retries = 0
            while True:
                pacer.acquire()
                if retries:
                    pacer.count("retried")
                started = time.monotonic()
                try:
                    response: httpx.Response = super().send(request, **kwargs)
                    if log.isEnabledFor(logging.DEBUG):
                        log_exchange(request, response, time.monotonic() - started)
                except httpx.TransportError as exc:
                    pacer.count("network_errors")
                    retries += 1
                    limit = (
                        retry.max_connect_attempts
                        if isinstance(exc, httpx.ConnectError)
                        else retry.max_attempts
                    )
                    if request.method not in IDEMPOTENT_METHODS or retries >= limit:
                        raise
                    delay = retry.backoff(retries)
                    log.info("%s %s: %s; retry in %.2fs", request.method, request.url.path,
                             type(exc).__name__, delay)  # fmt: skip
                    sleep(delay)
                    continue
                status = response.status_code
                if status not in RETRYABLE_STATUSES:
                    return response
                if status == 429:
                    pacer.count("throttled")
                else:
                    pacer.count("server_errors")
                retries += 1
                retryable = status == 429 or request.method in IDEMPOTENT_METHODS
                if not retryable or retries >= retry.max_attempts:
                    return response
                hinted = retry_after_seconds(response.headers)
                if hinted is not None and hinted > retry.max_retry_after_s:
                    return response
                delay = hinted if hinted is not None else retry.backoff(retries)
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
                    retry.max_attempts - 1,
                    delay,
                )
                if status == 429:
                    pacer.pause(delay)  # everyone waits: the budget is shared
                else:
                    sleep(delay)

    if transport is not None:
        return PacedHttpxClient(transport=transport)
    return PacedHttpxClient()


def paced_client(
    client: Cloudflare,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> Cloudflare:
    """A copy of ``client`` whose every request goes through ``pacer`` and ``policy``.

    The SDK's own retries are turned off (``max_retries=0``). A client that is already paced is
    returned as is, so nested bulk work (``apply`` calling ``bind``) never counts a call twice.
    A test's custom transport (anything but httpx's own) is kept.
    """
    import httpx

    current: httpx.Client = client._client
    if getattr(current, "code24_pacer", None) is not None:
        return client
    transport = getattr(current, "_transport", None)
    keep = transport if not isinstance(transport, httpx.HTTPTransport) else None
    http = make_paced_http_client(pacer or default_pacer(), policy, transport=keep)
    return client.with_options(http_client=http, max_retries=0)


def pacer_of(client: Cloudflare) -> Pacer | None:
    """The pacer a client built by :func:`paced_client` goes through, if any."""
    found = getattr(client._client, "code24_pacer", None)
    return found if isinstance(found, Pacer) else None


_default_lock = threading.Lock()
_default: Pacer | None = None


def default_pacer() -> Pacer:
    """The process-wide pacer for the real API budget (shared by every command in a process)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pacer()
        return _default
