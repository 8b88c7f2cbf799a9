"""The lines serve reads from workerd: each at most a limit long, a longer one cut and marked,
and the lines after it read as usual (serve/workerd/runtime.py ``bounded_lines``)."""

from __future__ import annotations

import asyncio

import pytest

from code24ctl.serve.workerd.runtime import CUT_MARK, bounded_lines


def _lines(chunks: list[bytes], limit: int) -> list[bytes]:
    async def read() -> list[bytes]:
        stream = asyncio.StreamReader()
        for chunk in chunks:
            stream.feed_data(chunk)
        stream.feed_eof()
        return [line async for line in bounded_lines(stream, limit)]

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nbb\n"], [b"a", b"bb"]),
        ([b"a", b"b\nc", b"\n"], [b"ab", b"c"]),
        ([b"no newline"], [b"no newline"]),
        ([b"\n\n"], [b"", b""]),
        ([b"0123456789\n"], [b"0123456789"]),
        # Longer than the limit with its newline in sight: cut there, the next line whole.
        ([b"0123456789ABCDEF\nnext\n"], [b"0123456789" + CUT_MARK, b"next"]),
        # Longer than the limit before its newline arrives: the rest is skipped over chunks.
        ([b"0123456789AB", b"CDEF", b"GHIJ\nnext\n"], [b"0123456789" + CUT_MARK, b"next"]),
        ([b"0123456789ABCDEF"], [b"0123456789" + CUT_MARK]),
    ],
)
def test_lines_are_bounded_and_reading_goes_on(chunks: list[bytes], lines: list[bytes]) -> None:
    assert _lines(chunks, 10) == lines


def test_a_megabyte_line_does_not_end_the_reading() -> None:
    big = b"x" * (3 * 1024 * 1024)
    assert _lines([b"before\n", big, b"\nafter\n"], 64 * 1024) == [
        b"before",
        b"x" * (64 * 1024) + CUT_MARK,
        b"after",
    ]
