"""The pacer and the paced transport on their own: budgets, the API's rate-limit headers, the
retry loop, the deadline and the answer check, all on a fake clock (no test waits)."""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from code24ctl.cloudflare.client import Credentials, api_call, make_client
from code24ctl.cloudflare.pacing import (
    API_BUDGET_REQUESTS,
    API_BUDGET_WINDOW_S,
    DEFAULT_HEADROOM,
    DeadlineExceeded,
    InvalidAnswer,
    PacedTransport,
    Pacer,
    Retry,
    RetryPolicy,
    check_answer,
    decide,
    gave_up,
    parse_ratelimit,
    repeatable,
    retry_after_seconds,
    sent_once,
)
from code24ctl.cloudflare.session import open_session
from code24ctl.errors import CloudflareAPIError
from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.clock import FakeClock

API = "https://api.cloudflare.test/client/v4"
ENVELOPE = {"success": True, "errors": [], "messages": [], "result": []}

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=ENVELOPE, headers=headers)


def html(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    page = "<!DOCTYPE html><html><title>Error</title></html>"
    return httpx.Response(
        status, text=page, headers={"content-type": "text/html", **(headers or {})}
    )


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[str]]:
    """A transport that answers each request with the next of ``answers`` (raising errors)."""
    queue: Iterator[httpx.Response | Exception] = iter(answers)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        answer = next(queue)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def send(transport: PacedTransport, method: str = "GET", path: str = "/zones") -> httpx.Response:
    with httpx.Client(transport=transport) as client:
        return client.request(method, API + path)


def transport_over(
    inner: httpx.BaseTransport, clock: FakeClock, policy: RetryPolicy | None = None
) -> PacedTransport:
    pacer = Pacer(clock=clock)
    return PacedTransport(inner, pacer, policy or RetryPolicy(max_delay_s=8.0), clock=clock)


# --------------------------------------------------------------------------------- the pacer


def test_pacer_allows_the_budget_minus_headroom_per_sliding_window() -> None:
    clock = FakeClock()
    pacer = Pacer(20, 10.0, headroom=0.25, clock=clock)
    assert pacer.limit == 15
    assert [pacer.reserve() for _ in range(15)] == [0.0] * 15
    assert pacer.reserve() == pytest.approx(10.0)
    clock.now += 4.0
    assert pacer.reserve() == pytest.approx(6.0)
    clock.now += 6.0  # the first 15 slots leave the window together
    assert [pacer.reserve() for _ in range(15)] == [0.0] * 15
    assert pacer.stats.sent == 30


def test_pacer_respects_the_per_ip_cap_of_200_a_second() -> None:
    clock = FakeClock()
    pacer = Pacer(100_000, 300.0, headroom=0.0, per_ip_headroom=0.0, clock=clock)
    assert [pacer.reserve() for _ in range(200)] == [0.0] * 200
    assert pacer.reserve() == pytest.approx(1.0)
    assert pacer.rate == 200
    clock.now += 1.0
    assert pacer.reserve() == 0.0


def test_pacer_pause_holds_every_thread_on_its_clock() -> None:
    clock = FakeClock()
    pacer = Pacer(1000, 1.0, headroom=0.0, clock=clock)
    pacer.pause(0.3)
    waits: list[float] = []
    threads = [threading.Thread(target=lambda: waits.append(pacer.acquire())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(waits) == 4
    assert clock.now >= 1000.3  # the clock moved only by sleeping, and past the pause
    assert waits[0] == pytest.approx(0.3, abs=0.01)
    assert pacer.stats.sent == 4


def test_ratelimit_headers_parse_as_structured_lists() -> None:
    assert parse_ratelimit('"default";r=50;t=30') == [("default", {"r": 50, "t": 30})]
    assert parse_ratelimit('"burst";q=100;w=60, "daily";q=5000;w=86400') == [
        ("burst", {"q": 100, "w": 60}),
        ("daily", {"q": 5000, "w": 86400}),
    ]
    assert parse_ratelimit("default;r=x;t=3") == [("default", {"t": 3})]
    assert parse_ratelimit("") == []
    assert parse_ratelimit('"bad name;r=1') == []


def test_the_pacer_stops_when_the_api_says_nothing_is_left() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    pacer.observe(httpx.Headers({"Ratelimit": '"default";r=2;t=30'}))
    assert [pacer.reserve(), pacer.reserve()] == [0.0, 0.0]
    assert pacer.reserve() == pytest.approx(30.0)  # two left were spent: wait for the reset
    clock.now += 30.0
    assert pacer.reserve() == 0.0  # a new window: back to our own budget


def test_the_pacer_adopts_an_announced_policy_less_its_headroom() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, headroom=0.1)
    pacer.observe(httpx.Headers({"Ratelimit-Policy": '"burst";q=10;w=60'}))
    assert [pacer.reserve() for _ in range(9)] == [0.0] * 9
    assert pacer.reserve() == pytest.approx(60.0)


def test_ratelimit_headers_from_the_transport_reach_the_pacer() -> None:
    clock = FakeClock()
    inner, _ = scripted(envelope(headers={"Ratelimit": '"default";r=0;t=12'}), envelope())
    transport = transport_over(inner, clock)
    assert send(transport).status_code == 200
    assert send(transport).status_code == 200
    assert clock.sleeps == [pytest.approx(12.0)]  # the second request waited for the reset


# ----------------------------------------------------------------------- the retry loop


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    hinted = retry_after_seconds({"Retry-After": later})
    assert hinted is not None and 25 < hinted <= 30


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = policy.backoff(retry)
        assert ceiling / 2 <= delay <= ceiling


class _TopOfJitter(random.Random):
    """Jitter that always takes its upper bound, so a backoff is exactly its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


_FIXED = RetryPolicy(
    base_delay_s=2.0,
    max_delay_s=2.0,
    max_attempts=4,
    max_retry_after_s=60.0,
    rng=_TopOfJitter(),
)


def decision(
    what: str,
    method: str,
    outcome: httpx.Response | httpx.TransportError,
    *,
    attempts: int = 1,
    left_s: float = 900.0,
    retry: Retry | None = None,
) -> Any:
    """One row of the retry decision: after attempt ``attempts`` ended in ``outcome`` with
    ``left_s`` seconds of the call left, ``retry`` (``None``: the call ends there)."""
    return pytest.param(method, outcome, attempts, left_s, retry, id=what)


@pytest.mark.parametrize(
    ("method", "outcome", "attempts", "left_s", "expected"),
    [
        decision("a 2xx ends the call", "GET", envelope()),
        decision("a 4xx ends the call", "GET", envelope(404)),
        decision(
            "a 429 waits its Retry-After, every thread (a POST too)",
            "POST",
            envelope(429, {"Retry-After": "7"}),
            retry=Retry(7.0, shared=True),
        ),
        decision(
            "a 429 without Retry-After backs off", "GET", envelope(429), retry=Retry(2.0, True)
        ),
        decision(
            "a Retry-After over the policy's limit is not waited",
            "GET",
            envelope(429, {"Retry-After": "61"}),
        ),
        decision(
            "a wait past the deadline is not taken",
            "GET",
            envelope(429, {"Retry-After": "7"}),
            left_s=7.0,
        ),
        decision("a 5xx on a GET backs off", "GET", html(503), retry=Retry(2.0)),
        decision("a 5xx on a POST ends the call", "POST", html(503)),
        decision("the last attempt's answer ends the call", "GET", html(502), attempts=4),
        decision(
            "a broken connection on a PUT backs off",
            "PUT",
            httpx.ReadError("reset"),
            retry=Retry(2.0),
        ),
        decision("a broken connection on a POST ends the call", "POST", httpx.ReadError("reset")),
        decision(
            "a refused connection gets three attempts, not four",
            "GET",
            httpx.ConnectError("refused"),
            attempts=3,
        ),
        decision(
            "a read error may use every attempt",
            "GET",
            httpx.ReadError("reset"),
            attempts=3,
            retry=Retry(2.0),
        ),
        decision(
            "a timeout with no time left ends the call",
            "GET",
            httpx.ReadTimeout("slow"),
            left_s=0.0,
        ),
    ],
)
def test_the_retry_decision(
    method: str,
    outcome: httpx.Response | httpx.TransportError,
    attempts: int,
    left_s: float,
    expected: Retry | None,
) -> None:
    assert decide(_FIXED, method, outcome, attempts, left_s) == expected


def test_429_waits_retry_after_and_5xx_backs_off_on_the_injected_clock() -> None:
    clock = FakeClock()
    inner, seen = scripted(
        envelope(429, headers={"Retry-After": "7"}),
        html(503),
        envelope(),
    )
    transport = transport_over(inner, clock, RetryPolicy(base_delay_s=1.0, max_delay_s=8.0))
    response = send(transport)
    assert response.status_code == 200
    assert seen == ["GET /client/v4/zones"] * 3
    assert clock.sleeps[0] == pytest.approx(7.0)  # the 429's Retry-After, through the pacer
    assert 1.0 <= clock.sleeps[1] <= 2.0  # second retry: backoff 2 s with equal jitter
    assert len(clock.sleeps) == 2
    stats = transport.pacer.stats
    assert (stats.sent, stats.throttled, stats.server_errors, stats.retried) == (3, 1, 1, 2)


def test_a_post_is_not_retried_after_a_5xx_but_is_after_a_429() -> None:
    clock = FakeClock()
    inner, seen = scripted(envelope(429, headers={"Retry-After": "1"}), html(503))
    transport = transport_over(inner, clock)
    assert send(transport, "POST").status_code == 503
    assert len(seen) == 2
    assert clock.sleeps == [pytest.approx(1.0)]


def test_attempts_are_capped_and_the_last_answer_is_returned() -> None:
    clock = FakeClock()
    inner, seen = scripted(*(html(502) for _ in range(4)))
    transport = transport_over(inner, clock, RetryPolicy(max_attempts=4))
    assert send(transport).status_code == 502
    assert len(seen) == 4
    assert len(clock.sleeps) == 3


def test_a_refused_connection_is_tried_three_times_only() -> None:
    clock = FakeClock()
    inner, seen = scripted(*(httpx.ConnectError("refused") for _ in range(3)))
    transport = transport_over(inner, clock)
    with pytest.raises(httpx.ConnectError):
        send(transport)
    assert len(seen) == 3
    assert transport.pacer.stats.network_errors == 3


def test_a_retry_after_beyond_the_call_deadline_is_not_waited_for() -> None:
    clock = FakeClock()
    inner, seen = scripted(envelope(429, headers={"Retry-After": "45"}))
    transport = transport_over(inner, clock, RetryPolicy(total_s=30.0))
    assert send(transport).status_code == 429
    assert len(seen) == 1
    assert clock.sleeps == []


def test_a_call_that_hangs_ends_at_its_deadline_naming_what_it_waited_for() -> None:
    clock = FakeClock()
    timeouts: list[float] = []

    def hang(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out", request=request)

    transport = transport_over(
        httpx.MockTransport(hang), clock, RetryPolicy(read_timeout_s=4.0, total_s=10.0)
    )
    with pytest.raises(DeadlineExceeded) as caught:
        send(transport, path="/accounts/a1/workers/dispatch/namespaces")
    # Each attempt's read timeout is clamped to what is left of the call's 10 s.
    # The waits between attempts (on the fake clock) and the timed-out attempts add up to 10 s.
    assert timeouts[0] == 4.0 and timeouts[-1] < 4.0
    assert sum(timeouts) + clock.slept == pytest.approx(10.0)
    assert str(caught.value) == (
        "no answer from the Cloudflare API at api.cloudflare.test within 10 s (connected, "
        "waiting for the answer; GET /client/v4/accounts/a1/workers/dispatch/namespaces)"
    )


# ------------------------------------------------------------------------ the answer check


def check(response: httpx.Response, path: str = "/zones") -> None:
    check_answer(httpx.Request("GET", API + path), response)


def answer(status: int, content: bytes = b"", content_type: str | None = None) -> httpx.Response:
    """An answer with exactly this body and (if given) this content type."""
    headers = {"content-type": content_type} if content_type else None
    return httpx.Response(status, content=content, headers=headers)


@pytest.mark.parametrize(
    ("response", "what"),
    [
        (html(200), "HTTP 200, text/html, an HTML page"),
        (answer(200, b"<html>portal</html>", "text/plain"), "HTTP 200, text/plain, an HTML page"),
        (answer(200), "HTTP 200, no content type, an empty body"),
        (answer(204), "HTTP 204, no content type, no content"),
        (
            answer(200, b"{", "application/json"),
            "HTTP 200, application/json, JSON that does not parse",
        ),
        (
            answer(200, b"[1, 2]", "application/json"),
            "HTTP 200, application/json, JSON without the v4 envelope",
        ),
    ],
)
def test_a_2xx_that_is_not_a_v4_answer_is_refused(response: httpx.Response, what: str) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        check(response)
    assert str(caught.value) == (
        f"the answer from api.cloudflare.test is not a Cloudflare API answer: {what}"
    )


def test_a_2xx_envelope_that_says_it_failed_is_an_api_error() -> None:
    from code24ctl.cloudflare.client import api_call
    from code24ctl.errors import CloudflareAPIError

    failed = {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}
    clock = FakeClock()
    client = make_client(
        Credentials(token="t" * 40, base_url=API),
        pacer=Pacer(clock=clock),
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=failed)),
        clock=clock,
    )
    with pytest.raises(CloudflareAPIError) as caught, api_call("verify the API token"):
        client.user.tokens.verify()
    assert caught.value.code == 10000
    assert caught.value.message == (
        "verify the API token: Cloudflare API error 10000: Authentication error (HTTP 200)"
    )


def test_envelopes_multipart_and_script_content_pass_the_check() -> None:
    check(envelope())
    check(
        httpx.Response(
            200, content=b"--b--", headers={"content-type": "multipart/form-data; boundary=b"}
        )
    )
    js = httpx.Response(200, text="addEventListener()", headers={"content-type": "text/javascript"})
    check(js, "/accounts/a/workers/scripts/w/content/v2")
    check(html(404))  # not a 2xx: the SDK turns it into an API error
    with pytest.raises(InvalidAnswer):
        check(html(200), "/accounts/a/workers/scripts/w/content/v2")


def test_the_sql_api_answers_its_own_json_not_the_envelope() -> None:
    sql = "/accounts/a/analytics_engine/sql"
    check(httpx.Response(200, json={"meta": [], "data": [], "rows": 0}), sql)
    with pytest.raises(InvalidAnswer) as caught:
        check(httpx.Response(200, json={"success": True, "result": []}), sql)
    assert str(caught.value).endswith("application/json, JSON without the SQL API's data")
    with pytest.raises(InvalidAnswer):
        check(html(200), sql)


# --------------------------------------------------------------- clients and their pacers


def test_make_client_paces_and_explicit_pacer_and_policy_take_effect() -> None:
    clock = FakeClock()
    calls: list[str] = []

    def ok(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={**ENVELOPE, "result": {"id": "t", "status": "active"}})

    session_pacer = Pacer(clock=clock)
    session = open_session(
        Credentials(token="t" * 40, base_url=API),
        "account",
        pacer=session_pacer,
        policy=RetryPolicy(),
        transport=httpx.MockTransport(ok),
        clock=clock,
    )
    assert session.pacer is session_pacer
    with session.paced() as same:
        assert same is session  # nested work never counts a call twice
    bulk_pacer = Pacer(clock=clock)
    with session.paced(bulk_pacer, RetryPolicy(max_attempts=2)) as bulk:
        assert bulk is not session and bulk.pacer is bulk_pacer
        bulk.client.user.tokens.verify()
        session.client.user.tokens.verify()
        assert (session_pacer.stats.sent, bulk_pacer.stats.sent) == (1, 1)
    session.client.user.tokens.verify()  # closing the copy left the shared transport open
    assert calls == ["/client/v4/user/tokens/verify"] * 3


def test_the_sdk_sees_an_invalid_answer_as_a_connection_error_we_can_unwrap() -> None:
    import cloudflare

    clock = FakeClock()
    client = make_client(
        Credentials(token="t" * 40, base_url=API),
        pacer=Pacer(clock=clock),
        transport=httpx.MockTransport(lambda request: httpx.Response(204)),
        clock=clock,
    )
    with pytest.raises(cloudflare.APIConnectionError) as caught:
        client.user.tokens.verify()
    assert isinstance(caught.value.__cause__, InvalidAnswer)
    assert json.dumps(str(caught.value.__cause__)).count("204") == 1


def test_a_pacer_given_to_bulk_work_is_the_one_its_calls_go_through(
    cf_state: EmulatorState, cf_seed: Code24Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from code24ctl.config import resolve_config
    from code24ctl.ops.worker_status import worker_status
    from tests.emulator import IN_PROCESS_API_BASE, create_app
    from tests.emulator.inprocess import InProcessTransport
    from tests.support.cli import REPO_CONFIG

    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", cf_seed.account_id)
    cf_state.add_namespace(cf_seed.account_id, "code24-workers-staging")
    clock = FakeClock()
    session_pacer = Pacer(clock=clock)
    session = open_session(
        Credentials(token=cf_seed.user_token, base_url=IN_PROCESS_API_BASE),
        cf_seed.account_id,
        pacer=session_pacer,
        transport=InProcessTransport(create_app(cf_state)),
        clock=clock,
    )
    resolved = resolve_config(REPO_CONFIG, "staging")
    own = Pacer(clock=clock)
    rows = worker_status(session, resolved, pacer=own)
    assert {row.status for row in rows} == {"missing"}
    assert (own.stats.sent, session_pacer.stats.sent) == (1, 0)
    worker_status(session, resolved)
    assert (own.stats.sent, session_pacer.stats.sent) == (1, 1)


# ------------------------------------------------------- cut answers, writes sent once, waits


class CutStream(httpx.SyncByteStream):
    """A body that ends a third of the way in, as a connection closed mid-answer does."""

    def __iter__(self) -> Iterator[bytes]:
        yield json.dumps(ENVELOPE).encode()[:20]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def cut(status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/json"}, stream=CutStream())


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_an_answer_cut_mid_body_is_retried_for_a_request_safe_to_repeat(method: str) -> None:
    clock = FakeClock()
    inner, seen = scripted(cut(), envelope())
    transport = transport_over(inner, clock)
    answer = send(transport, method)
    assert answer.status_code == 200
    assert answer.json() == ENVELOPE
    assert len(seen) == 2
    assert transport.pacer.stats.network_errors == 1


def test_an_answer_cut_mid_body_ends_a_post_for_the_caller_to_read_back() -> None:
    inner, seen = scripted(cut(), envelope())
    with pytest.raises(httpx.RemoteProtocolError):
        send(transport_over(inner, FakeClock()), "POST")
    assert len(seen) == 1


def test_a_put_sent_once_is_not_repeated_after_a_5xx_or_a_cut_but_is_after_a_429() -> None:
    clock = FakeClock()
    inner, seen = scripted(envelope(429, headers={"Retry-After": "1"}), html(500), cut())
    transport = transport_over(inner, clock)
    with sent_once():
        assert send(transport, "PUT").status_code == 500
        with pytest.raises(httpx.RemoteProtocolError):
            send(transport, "PUT")
    assert len(seen) == 3
    assert repeatable("PUT") and not repeatable("POST")


def test_a_run_of_429s_ends_at_the_deadline_not_after_ten_attempts_and_says_so() -> None:
    clock = FakeClock()
    inner, seen = scripted(*(envelope(429, headers={"Retry-After": "10"}) for _ in range(40)))
    transport = transport_over(inner, clock, RetryPolicy(total_s=300.0))
    answer = send(transport)
    assert answer.status_code == 429
    assert len(seen) == 30  # 29 waits of 10 s; the 30th would overrun 300 s
    assert gave_up(answer) == (
        "gave up after 30 attempts over 290 s (a call may take at most 300 s)"
    )


def test_the_give_up_reaches_the_error_message() -> None:
    clock = FakeClock()
    inner, _ = scripted(*(envelope(429, headers={"Retry-After": "10"}) for _ in range(4)))
    policy = RetryPolicy(total_s=35.0)
    pacer = Pacer(clock=clock)
    client = make_client(
        Credentials(token="t" * 40, base_url=API),
        pacer=pacer,
        policy=policy,
        transport=inner,
        clock=clock,
    )
    with pytest.raises(CloudflareAPIError) as raised, api_call("list zones"):
        client.zones.list()
    assert raised.value.message == (
        "list zones: the Cloudflare API answered HTTP 429 with no JSON; "
        "gave up after 4 attempts over 30 s (a call may take at most 35 s)"
    )
    assert not raised.value.unknown_outcome


def test_a_long_wait_for_a_slot_is_said_with_its_reason_and_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    pacer = Pacer(10, 30.0, headroom=0.0, per_second=None, clock=clock)
    for _ in range(10):
        pacer.acquire()
    with caplog.at_level("WARNING", logger="code24ctl.cloudflare.pacing"):
        assert pacer.acquire() == pytest.approx(30.0)
    assert [r.getMessage() for r in caplog.records] == [
        "waiting for the API budget (10 requests per 30 s, 10 less 0% headroom): "
        "30.0 s left (0.0 s waited so far)"
    ]


def test_a_pause_its_caller_said_is_not_said_again_by_the_threads_waiting_it_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    pacer = Pacer(1000, 300.0, headroom=0.0, per_second=None, clock=clock)
    with caplog.at_level("WARNING", logger="code24ctl.cloudflare.pacing"):
        pacer.pause(30.0, said=True)  # the transport's 429 line said this one
        threads = [threading.Thread(target=pacer.acquire) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert caplog.records == []
        pacer.pause(45.0)  # a longer pause nobody said: said once, whoever waits
        pacer.acquire()
        pacer.acquire()
    assert [r.getMessage() for r in caplog.records] == [
        "waiting for the API's Retry-After (HTTP 429): 45.0 s left (0.0 s waited so far)"
    ]


def test_one_line_for_a_long_retry_after_through_the_transport(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    inner, seen = scripted(envelope(429, headers={"Retry-After": "45"}), envelope())
    with caplog.at_level("WARNING", logger="code24ctl.cloudflare.pacing"):
        assert send(transport_over(inner, clock)).status_code == 200
    assert len(seen) == 2
    assert clock.sleeps == [45.0]
    assert [r.getMessage() for r in caplog.records] == [
        "GET /client/v4/zones: HTTP 429; retry 1 in 45.0s (900 s left of this call)"
    ]


def test_a_short_wait_is_not_said(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    pacer = Pacer(100_000, 300.0, headroom=0.0, per_second=2, per_ip_headroom=0.0, clock=clock)
    with caplog.at_level("WARNING", logger="code24ctl.cloudflare.pacing"):
        for _ in range(6):
            pacer.acquire()
    assert caplog.records == []
    assert clock.slept == pytest.approx(2.0)


def test_the_per_ip_cap_keeps_headroom_too() -> None:
    pacer = Pacer(clock=FakeClock())
    assert pacer.rate == API_BUDGET_REQUESTS * (1 - DEFAULT_HEADROOM) / API_BUDGET_WINDOW_S
    sent = 0
    while pacer.reserve() == 0.0:
        sent += 1
    assert sent == 150  # 200 a second less 25% (PER_IP_HEADROOM)
