"""Worker modules: the files a Worker is made of, as we download and upload them.

Shared by ``bind`` (copies into the namespace) and ``deploy`` (the dispatcher upload), so both
hand the SDK exactly the same multipart shape: one ``files`` part per module, named by its
filename, with its content type, beside the ``metadata`` JSON part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# Content types for module parts, by file extension: only types the SDK documents for uploads
# (application/javascript+module, text/javascript+module, application/javascript,
# text/javascript, text/x-python, text/x-python-requirement, application/wasm, text/plain,
# application/octet-stream, application/source-map). There is no JSON module type: a .json file
# goes up as text/plain, a Text module whose import is the document's text (what JSON.parse
# takes), rather than application/octet-stream, whose import would be raw bytes.
CONTENT_TYPES: dict[str, str] = {
    ".js": "application/javascript+module",
    ".mjs": "application/javascript+module",
    ".cjs": "application/javascript",
    ".py": "text/x-python",
    ".wasm": "application/wasm",
    ".json": "text/plain",
    ".txt": "text/plain",
    ".html": "text/plain",
    ".map": "application/source-map",
    ".bin": "application/octet-stream",
}


# Secret values can never be read back; an upload lists these binding types in
# ``keep_bindings`` so secrets already set on the Worker survive the upload.
KEEP_BINDING_TYPES = ("secret_text", "secret_key")
SECRET_BINDING_TYPES = frozenset(KEEP_BINDING_TYPES)


@dataclass(frozen=True)
class Module:
    """One module of a Worker: its name (as imported), bytes and content type."""

    name: str
    content: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def content_type_for(filename: str) -> str:
    """The module content type for a filename, defaulting to an opaque blob."""
    for extension, content_type in CONTENT_TYPES.items():
        if filename.endswith(extension):
            return content_type
    return "application/octet-stream"


def sdk_files(modules: Sequence[Module]) -> list[tuple[str, bytes, str]]:
    """The ``files=`` argument of the SDK's script upload calls."""
    return [(module.name, module.content, module.content_type) for module in modules]


def fingerprint(modules: Sequence[Module]) -> str:
    """A digest of names, types and contents, independent of order (for 'unchanged')."""
    digest = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.name):
        digest.update(f"{module.name}\0{module.content_type}\0{module.sha256}\n".encode())
    return digest.hexdigest()
