"""``multipart/form-data`` as ``content/v2`` answers a Worker's modules, parsed by hand."""

from __future__ import annotations

import re

from code24ctl.cloudflare.modules import Module, content_type_for
from code24ctl.errors import CloudflareAPIError

_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("[^"]*"|[^;]*)')


def parse_multipart(
    body: bytes, content_type: str, *, action: str = "read modules"
) -> list[Module]:
    """Split a ``multipart/form-data`` answer into modules (name, bytes, content type).

    Each part's module name is its ``name`` (or ``filename``); parts without a content type are
    typed from their name. Written by hand so binary parts (WebAssembly) pass byte for byte.
    """
    params = _params(content_type)
    boundary = params.get("boundary")
    if not content_type.lower().startswith("multipart/") or not boundary:
        raise CloudflareAPIError(
            f"{action}: expected a multipart answer, got {content_type or 'no content type'!r}"
        )
    delimiter = b"--" + boundary.encode("latin-1")
    modules: list[Module] = []
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise CloudflareAPIError(f"{action}: a multipart part has no header block")
        content = content.removesuffix(b"\r\n")
        headers = _part_headers(head)
        disposition = _params(headers.get("content-disposition", ""))
        name = disposition.get("name") or disposition.get("filename")
        if not name:
            raise CloudflareAPIError(f"{action}: a multipart part has no name")
        part_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        modules.append(Module(name, content, part_type or content_type_for(name)))
    if not modules:
        raise CloudflareAPIError(f"{action}: the answer holds no modules")
    return modules


def _part_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers


def _params(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in _PARAM_RE.findall(header):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            # Form-data names escape by percent-encoding (HTML5), not backslashes.
            value = value[1:-1].replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
        found[key.lower()] = value
    return found
