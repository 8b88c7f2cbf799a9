"""The route table's defaults and the one prefix rule of docs/dispatch.md.

Shared by ``config`` (which validates a config against them) and ``dispatch`` (which applies
them), so they live below both: config never imports dispatch. The JavaScript dispatcher uses
the same values (tests/unit/dispatch/test_routing.py holds it to them).
"""

# The route table's defaults (docs/dispatch.md, "The route table").
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_JSON_CHECK_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_MS = 30000
DEFAULT_FALLBACK_STATUS = 200


def prefix_matches(path: str, prefix: str) -> bool:
    """``prefix`` matches ``path`` on a segment boundary ("" and "/" match everything).

    The one prefix rule: routing, the config's checks and probe's route filter all use it.
    """
    return prefix in ("", "/") or path == prefix or path.startswith(prefix + "/")
