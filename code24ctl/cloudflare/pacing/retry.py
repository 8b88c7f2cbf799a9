"""The retry policy: which answers and failures are worth another attempt, after how long, and
how long one call may take.

:func:`decide` is the policy's one decision, made after each attempt; the transport
(:mod:`.transport`) runs the loop around it (attempt, decide, wait).
"""

from __future__ import annotations

import contextvars
import email.utils
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import httpx

from code24ctl.errors import UsageError

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527})
#: Methods that are safe to send twice (a 5xx or a broken connection may hide a success).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: Set inside :func:`sent_once`: the request in flight must not be sent twice by the transport.
_ONCE: contextvars.ContextVar[bool] = contextvars.ContextVar("code24ctl_sent_once", default=False)


@contextmanager
def sent_once() -> Iterator[None]:
    """Requests sent inside the block are never repeated after a failure that may hide a
    success (a 5xx, a cut answer, no answer), whatever their method: the caller reads the
    state back and decides (an upload that carries a Durable Object migration is refused when
    repeated). A 429 is still retried: the API did not carry it out.
    """
    token = _ONCE.set(True)
    try:
        yield
    finally:
        _ONCE.reset(token)


def repeatable(method: str) -> bool:
    """Whether a request with ``method`` may be sent again here (see :func:`sent_once`)."""
    return method in IDEMPOTENT_METHODS and not _ONCE.get()


#: Seconds one API call may take, retries included (overrides the policy; tests make it short).
API_TIMEOUT_ENV_VAR = "CODE24_API_TIMEOUT"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry an answer the API says may succeed later, and how long
    one call may take.

    429: wait ``Retry-After`` (all threads, through the pacer) or back off, until ``total_s``
    runs out (``max_attempts`` does not end a run of 429s: the deadline does). 5xx (JSON or an
    HTML edge page) and network failures, a body cut mid-answer included: back off
    exponentially with jitter, only for idempotent methods. A ``Retry-After`` longer than
    ``max_retry_after_s`` or than what is left of ``total_s`` is not waited for: the call
    fails and says so. ``connect_timeout_s`` and ``read_timeout_s`` bound each attempt;
    ``total_s`` bounds the call, retries included.
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


@dataclass(frozen=True)
class Retry:
    """Try the call again after ``delay_s``; ``shared``: every thread waits (a 429's pause, as
    the budget is shared), else only this call sleeps."""

    delay_s: float
    shared: bool = False


def decide(
    policy: RetryPolicy,
    method: str,
    outcome: httpx.Response | httpx.TransportError,
    attempts: int,
    left_s: float,
    *,
    again: bool | None = None,
) -> Retry | None:
    """Whether a call whose attempt number ``attempts`` ended in ``outcome`` (an answer or a
    network failure) is tried again, and after how long; ``None``: it ends with this outcome.

    ``left_s`` is what is left of the call's deadline: a wait that would overrun it is not
    taken, nor is a ``Retry-After`` longer than the policy allows. ``again``: whether the
    request may be sent twice (default: :func:`repeatable` for ``method``).
    """
    if again is None:
        again = repeatable(method)
    if isinstance(outcome, httpx.Response):
        return _after_answer(policy, again, outcome, attempts, left_s)
    if isinstance(outcome, httpx.TimeoutException) and left_s <= 0:
        return None
    limit = (
        policy.max_connect_attempts
        if isinstance(outcome, httpx.ConnectError)
        else policy.max_attempts
    )
    if not again or attempts >= limit:
        return None
    delay = policy.backoff(attempts)
    return Retry(delay) if delay < left_s else None


def _after_answer(
    policy: RetryPolicy, again: bool, response: httpx.Response, attempts: int, left_s: float
) -> Retry | None:
    status = response.status_code
    if status not in RETRYABLE_STATUSES:
        return None
    if status != 429 and (not again or attempts >= policy.max_attempts):
        return None
    hinted = retry_after_seconds(response.headers)
    if hinted is not None and hinted > policy.max_retry_after_s:
        return None
    delay = hinted if hinted is not None else policy.backoff(attempts)
    # Waiting would overrun the call's deadline: report this answer instead.
    return Retry(delay, shared=status == 429) if delay < left_s else None
