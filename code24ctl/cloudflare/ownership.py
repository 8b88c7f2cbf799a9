"""The tags that say code24ctl wrote a Worker, for which platform, environment and alias."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from code24ctl.config import ResolvedConfig

#: Tags code24ctl puts on every Worker it writes start with this (the rest of the script's
#: tags are the source's own). docs: at most eight tags per script.
MANAGED_TAG_PREFIX = "code24ctl-"
MAX_TAGS = 8


def managed_tags(resolved: ResolvedConfig, role: str) -> list[str]:
    """The tags code24ctl puts on a Worker it writes: platform, environment, and ``role``
    (``alias:<alias>`` for a user Worker, ``role:dispatcher`` for the dispatcher)."""
    platform = re.sub(r"[^a-z0-9_-]+", "-", resolved.config.platform.lower()).strip("-")
    return [
        f"{MANAGED_TAG_PREFIX}platform:{platform}",
        f"{MANAGED_TAG_PREFIX}environment:{resolved.env_name}",
        f"{MANAGED_TAG_PREFIX}{role}",
    ]


def managed_alias(tags: Iterable[str], resolved: ResolvedConfig) -> str | None:
    """The alias a Worker's tags say code24ctl wrote it for, on this platform and environment
    (None: not one of ours here)."""
    wanted = set(managed_tags(resolved, "")[:2])
    tags = list(tags)
    if not wanted <= set(tags):
        return None
    prefix = f"{MANAGED_TAG_PREFIX}alias:"
    return next((tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)), None)
