"""The one bound on reading ``namespaces.yaml`` that needs no YAML: the file's size.

Apart from :mod:`code24ctl.config.bounds` (which re-exports it) so that ``--help``, which reads
the config to name its default environment, keeps the bound without importing PyYAML.
"""

from __future__ import annotations

import os

MIB = 1024 * 1024
MAX_CONFIG_BYTES = 1 * MIB


class BoundsExceeded(Exception):
    """The file breaks one of the bounds; ``line`` (1-based) says where, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def read_bounded(path: str) -> bytes:
    """The file's bytes, refusing (before reading it all) a file over the size cap."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if size > MAX_CONFIG_BYTES or len(data) > MAX_CONFIG_BYTES:
        whole = f" ({MAX_CONFIG_BYTES // MIB} MiB)" if MAX_CONFIG_BYTES % MIB == 0 else ""
        raise BoundsExceeded(
            f"the file is {max(size, len(data)):,} bytes; a config may be at most "
            f"{MAX_CONFIG_BYTES:,} bytes{whole}"
        )
    return data
