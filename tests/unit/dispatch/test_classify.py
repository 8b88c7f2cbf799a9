"""Unit tests of :mod:`code24ctl.dispatch.classify`: the verdicts of docs/dispatch.md, D8, and the
HTML sniff of D4, case by case."""

from __future__ import annotations

import pytest

from code24ctl.dispatch.classify import (
    NO_BODY_STATUSES,
    SNIFF_BYTES,
    classify_answer,
    cloudflare_error_code,
    is_html_media_type,
    is_json_media_type,
    looks_like_html,
    media_type,
)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "verdict"),
    [
        # html: the body looks like HTML, whatever the header says; or the type is HTML.
        (200, "application/json", b"<!DOCTYPE html><p>hi</p>", "html"),
        (502, None, b"\xef\xbb\xbf \r\n<HTML><body>x</body></HTML>", "html"),
        (200, "text/html; charset=utf-8", b'{"ok": true}', "html"),
        (200, "application/xhtml+xml", b'<?xml version="1.0"?><html/>', "html"),
        # empty: nothing but whitespace, 204/304 included.
        (200, "application/json", b"", "empty"),
        (200, "text/plain", b" \n\t", "empty"),
        (204, None, b"", "empty"),
        # json: a JSON type and a body that parses strictly.
        (200, "application/json", b'{"ok": true}', "json"),
        (500, "application/problem+json; charset=utf-8", b'{"title": "x"}', "json"),
        (200, "Application/JSON", b"[1, 2]", "json"),
        # not-json: everything else.
        (200, "application/json", b'{"ok": tru', "not-json"),
        (200, "application/json", b'\xef\xbb\xbf{"bom": true}', "not-json"),
        (200, "application/json", b'{"n": NaN}', "not-json"),
        (200, "application/json", b'{"latin1": "\xe9"}', "not-json"),
        (200, "text/plain", b'{"ok": true}', "not-json"),
        (200, None, b'{"ok": true}', "not-json"),
        (404, "text/plain", b"error code: 1042", "not-json"),
    ],
)
def test_verdicts(status: int, content_type: str | None, body: bytes, verdict: str) -> None:
    assert classify_answer(status, content_type, body).verdict == verdict


def test_a_cloudflare_stub_is_named_with_its_code() -> None:
    found = classify_answer(404, "text/plain", b"error code: 1042\n")
    assert (found.verdict, found.cloudflare_error) == ("not-json", 1042)
    assert found.reason == "Cloudflare error stub 'error code: 1042'"
    assert cloudflare_error_code(b"Error Code: 522") == 522
    assert cloudflare_error_code(b"error code: 1042 and more") is None


def test_the_html_sniff_looks_only_at_the_start() -> None:
    assert looks_like_html(b"  <!doctype HTML>")
    assert not looks_like_html(b"x<html>")
    assert not looks_like_html(b" " * SNIFF_BYTES + b"<html>")
    assert looks_like_html(b" " * (SNIFF_BYTES - len(b"<html>")) + b"<html>")


def test_media_types() -> None:
    assert media_type(" Application/JSON ; charset=utf-8") == "application/json"
    assert media_type(None) == ""
    assert is_json_media_type("application/vnd.api+json")
    assert not is_json_media_type("text/json-ish")
    assert is_html_media_type("TEXT/HTML")
    assert not is_html_media_type("text/plain")
    assert frozenset({204, 304}) == NO_BODY_STATUSES
