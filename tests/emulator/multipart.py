"""multipart/form-data parsing and building, as the Workers upload and content APIs use it.

Starlette's own form parser needs python-multipart (not a dependency here) and hides the part
order and raw headers that tests want to assert on, so the emulator carries its own small codec.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["MultipartError", "Part", "build_multipart", "header_param", "parse_multipart"]


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True)
class Part:
    """One part of a multipart body: its form name, filename, content type and bytes."""

    name: str | None
    filename: str | None
    content_type: str | None
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The part decoded as UTF-8 (replacement characters for undecodable bytes)."""
        return self.data.decode("utf-8", errors="replace")

    @property
    def module_name(self) -> str | None:
        """The module this part carries: the filename when there is one, else the form name."""
        return self.filename if self.filename is not None else self.name


_PARAM_RE = re.compile(
    r';\s*(?P<key>[A-Za-z0-9_.*-]+)\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<token>[^;]*))'
)


def header_param(value: str, key: str) -> str | None:
    """Return parameter ``key`` of a header value like ``form-data; name="x"`` (or None)."""
    for match in _PARAM_RE.finditer(";" + value.split(";", 1)[1] if ";" in value else ""):
        if match.group("key").lower() != key.lower():
            continue
        quoted = match.group("quoted")
        if quoted is not None:
            # Percent-encoding (HTML5, httpx), not backslash escapes, protects quotes in names.
            return quoted
        return (match.group("token") or "").strip()
    return None


def _decode_html5_name(value: str) -> str:
    # Browsers and httpx percent-encode only these three characters in form-data names.
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data ``body`` into its parts, in order."""
    if not content_type.lower().startswith("multipart/"):
        raise MultipartError(f"expected a multipart content type, got {content_type!r}")
    boundary = header_param(content_type, "boundary")
    if not boundary:
        raise MultipartError("the multipart content type has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("the body does not contain the boundary")
    pos = start + len(delimiter)
    parts: list[Part] = []
    while True:
        if body[pos : pos + 2] == b"--":
            return parts
        if body[pos : pos + 2] != b"\r\n":
            raise MultipartError("malformed boundary line")
        pos += 2
        end = body.find(b"\r\n" + delimiter, pos)
        if end < 0:
            raise MultipartError("the body ends before the closing boundary")
        chunk = body[pos:end]
        if chunk.startswith(b"\r\n"):
            raw_headers, data = b"", chunk[2:]
        else:
            raw_headers, sep, data = chunk.partition(b"\r\n\r\n")
            if not sep:
                raise MultipartError("a part has no blank line after its headers")
        headers: dict[str, str] = {}
        for line in raw_headers.decode("utf-8", errors="replace").split("\r\n"):
            if not line.strip():
                continue
            key, colon, value = line.partition(":")
            if not colon:
                raise MultipartError(f"malformed part header {line!r}")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = header_param(disposition, "name")
        filename = header_param(disposition, "filename")
        ctype = headers.get("content-type")
        parts.append(
            Part(
                name=_decode_html5_name(name) if name is not None else None,
                filename=_decode_html5_name(filename) if filename is not None else None,
                content_type=ctype,
                data=data,
                headers=headers,
            )
        )
        pos = end + 2 + len(delimiter)


def _quote(value: str) -> str:
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def build_multipart(
    parts: Iterable[tuple[str, str | None, str | None, bytes]],
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """Encode ``(name, filename, content_type, data)`` parts; return ``(body, content_type)``."""
    boundary = boundary or secrets.token_hex(16)
    out = bytearray()
    for name, filename, ctype, data in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{_quote(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote(filename)}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
