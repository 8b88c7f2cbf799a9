"""``code24ctl.ops.logs``: the command line hints print, the window, and reading one event."""

from __future__ import annotations

import json

import pytest

from code24ctl.errors import UsageError
from code24ctl.ops.logs import LogsQuery, logs_command, parse_event, resolve_window
from tests.emulator.telemetry import worker_event

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_logs_command_is_the_exact_line_to_run() -> None:
    assert logs_command("staging") == "code24ctl logs --env staging"
    assert (
        logs_command("staging", ["a", "b"], errors_only=True, since="1h", request_id=None)
        == "code24ctl logs --env staging --worker a --worker b --errors-only --since 1h"
    )


def test_the_window_is_the_last_15_minutes_unless_told() -> None:
    assert resolve_window(LogsQuery(), NOW) == (NOW - 900_000, NOW)
    assert resolve_window(LogsQuery(since="2h"), NOW) == (NOW - 7_200_000, NOW)
    start, end = resolve_window(
        LogsQuery(start="2025-12-31T23:00:00", end="2025-12-31T23:30:00+00:00"), NOW
    )
    assert (start, end) == (NOW - 3_600_000, NOW - 1_800_000)  # no zone: UTC


@pytest.mark.parametrize(
    "query",
    [
        LogsQuery(since="8d"),
        LogsQuery(since="1h", start="2025-12-31T23:00:00Z"),
        LogsQuery(start="2026-01-02T00:00:00Z"),
        LogsQuery(end="noon"),
    ],
)
def test_a_window_that_cannot_be_asked_for_is_a_usage_error(query: LogsQuery) -> None:
    with pytest.raises(UsageError):
        resolve_window(query, NOW)


def test_the_dispatchers_line_is_read_from_the_message_or_a_structured_source() -> None:
    line = {"code24": "request", "request_id": "r1", "method": "GET", "path": "/api/x",
            "worker": "w", "status": 502, "fallback_reason": "upstream_html"}  # fmt: skip
    as_text = worker_event(script="disp", timestamp_ms=NOW, message=json.dumps(line))
    as_fields = worker_event(script="disp", timestamp_ms=NOW, message="x", source=line)
    for event in (as_text, as_fields):
        parsed = parse_event(event, "disp")
        assert (parsed.source, parsed.worker, parsed.request_id) == ("dispatcher", "w", "r1")
        assert parsed.message == "GET /api/x -> 502 fallback upstream_html"
        assert parsed.fallback_reason == "upstream_html"
    # Another Worker logging the same shape is not the dispatcher.
    assert parse_event(as_text, "other").source == "worker"


def test_an_exception_without_a_structured_source_keeps_its_error_text() -> None:
    event = worker_event(script="w", timestamp_ms=NOW, error="Error: boom", outcome="exception")
    parsed = parse_event(event, "disp")
    assert (parsed.exception, parsed.stack, parsed.outcome) == ("Error: boom", None, "exception")
    assert parsed.time == "2026-01-01T00:00:00.000Z"
