"""The transport: every request the SDK sends goes through one :class:`PacedTransport`, an
``httpx`` transport wrapping the real one (the way httpx documents custom transports).

One loop per call: **attempt** (take a slot from the pacer, send within what is left of the
call's deadline, check the answer), **decide** (:func:`.retry.decide`), **wait** (sleep, or
pause every thread on a 429), until the policy says the call ends. Progress is logged while a
long attempt waits. The SDK's own retries are switched off (``max_retries=0``): they know
neither the budget nor the other threads.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from code24ctl.cloudflare.pacing.answer import (
    GAVE_UP,
    DeadlineExceeded,
    InvalidAnswer,
    check_answer,
    log_exchange,
)
from code24ctl.cloudflare.pacing.ratelimit import SYSTEM_CLOCK, Clock, Pacer
from code24ctl.cloudflare.pacing.retry import (
    RETRYABLE_STATUSES,
    Retry,
    RetryPolicy,
    decide,
    repeatable,
)

log = logging.getLogger("code24ctl.cloudflare.pacing")

#: A wait longer than this is said on stderr (without -v), with its reason and length.
QUIET_WAIT_S = 2.0

#: What one attempt ends in: an answer, or a failure on the way to it.
Outcome = httpx.Response | httpx.TransportError


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
        self.pacer.acquire()
        call = _CallTime(self.policy.total_s)
        again = repeatable(request.method)  # read here: the caller's context, not a thread's
        attempts = 0
        while True:
            if attempts:
                self.pacer.count("retried")
            outcome = self._attempt(request, call)
            attempts += 1
            retry = decide(self.policy, request.method, outcome, attempts, call.left(), again=again)
            if retry is None:
                return self._final(request, outcome, call, attempts)
            self._wait(request, outcome, retry, attempts, call)

    def _attempt(self, request: httpx.Request, call: _CallTime) -> Outcome:
        """One attempt: send, count what came back, check an answer that ends the call.

        A failure on the network is returned, not raised, for the policy to decide on (an
        answer cut mid-body too: the whole body is read here); an answer that is not the
        API's raises at once (no retry makes a proxy's page right).
        """
        try:
            response = self._send(request, call)
        except httpx.TransportError as exc:
            self.pacer.count("network_errors")
            return exc
        self.pacer.observe(response.headers)
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            self.pacer.count("throttled" if status == 429 else "server_errors")
            return response
        try:
            check_answer(request, response)
        except InvalidAnswer:
            response.close()
            raise
        return response

    def _final(
        self, request: httpx.Request, outcome: Outcome, call: _CallTime, attempts: int
    ) -> httpx.Response:
        """The call's end: the last answer, or the last failure raised.

        An answer that still asks to retry (429, 5xx) after several attempts carries, under
        :data:`GAVE_UP`, how many attempts were made and how long they took.
        """
        if isinstance(outcome, httpx.Response):
            if attempts > 1 and outcome.status_code in RETRYABLE_STATUSES:
                outcome.extensions[GAVE_UP] = (
                    f"gave up after {attempts} attempts over {call.spent:.0f} s "
                    f"(a call may take at most {self.policy.total_s:g} s)"
                )
            return outcome
        if isinstance(outcome, httpx.TimeoutException) and call.left() <= 0:
            waiting = (
                "waiting to connect"
                if isinstance(outcome, httpx.ConnectTimeout)
                else "connected, waiting for the answer"
            )
            raise DeadlineExceeded(request, self.policy.total_s, waiting) from outcome
        raise outcome

    def _wait(
        self, request: httpx.Request, outcome: Outcome, retry: Retry, attempts: int, call: _CallTime
    ) -> None:
        """Wait before the next attempt, then take its slot from the pacer."""
        delay = retry.delay_s
        said = False
        if isinstance(outcome, httpx.Response):
            outcome.close()
            # From the second retry on, or a wait over QUIET_WAIT_S, say so without -v: a long
            # silent wait looks hung.
            level = logging.WARNING if attempts >= 2 or delay > QUIET_WAIT_S else logging.INFO
            said = level == logging.WARNING
            if outcome.status_code == 429:  # ended by the deadline, not by a count
                log.log(level, "%s %s: HTTP 429; retry %d in %.1fs (%.0f s left of this call)",
                        request.method, request.url.path, attempts, delay, call.left())  # fmt: skip
            else:
                log.log(level, "%s %s: HTTP %d; retry %d of %d in %.1fs", request.method,
                        request.url.path, outcome.status_code, attempts,
                        self.policy.max_attempts - 1, delay)  # fmt: skip
        else:
            log.info("%s %s: %s; retry in %.2fs", request.method, request.url.path,
                     type(outcome).__name__, delay)  # fmt: skip
        if retry.shared:
            # Everyone waits (the budget is shared); said above, so the pacer does not say it
            # again to the thread that met the 429 nor to those waiting beside it.
            self.pacer.pause(delay, said=said)
        else:
            self.clock.sleep(delay)
            call.spend(delay)
        call.spend(self.pacer.acquire())

    def _send(self, request: httpx.Request, call: _CallTime) -> httpx.Response:
        """Send once, the timeouts clamped to what is left of the call's deadline."""
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
        response: httpx.Response | None = None
        try:
            response = self.inner.handle_request(request)
            # The whole answer inside the attempt: a body cut mid-answer is a network failure
            # the policy decides on, like a reset before the answer.
            response.read()
            if log.isEnabledFor(logging.DEBUG):
                log_exchange(request, response, time.monotonic() - began)
            return response
        except httpx.TimeoutException as exc:
            charge = timeouts["connect" if isinstance(exc, httpx.ConnectTimeout) else "read"]
            if response is not None:
                response.close()
            raise
        except httpx.TransportError:
            if response is not None:
                response.close()
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


def paced_http_client(transport: PacedTransport) -> httpx.Client:
    """An httpx client with the SDK's defaults over ``transport``."""
    from cloudflare import DefaultHttpxClient

    client: httpx.Client = DefaultHttpxClient(transport=transport)
    return client
