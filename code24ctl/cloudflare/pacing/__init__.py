"""Pace API work under Cloudflare's budgets, retry what the API asks us to retry, and bound
how long one call may take.

Four parts, one module each:

- :mod:`.ratelimit`: the :class:`Pacer` (the 1,200 per 5 minutes per user and 200 per second
  per IP budgets, and the API's own ``Ratelimit`` / ``Ratelimit-Policy`` headers) and the
  injected :class:`Clock`;
- :mod:`.retry`: the :class:`RetryPolicy` (429 / 5xx / network failures, ``Retry-After``, a
  deadline per call) and its one decision, :func:`decide`;
- :mod:`.answer`: the check that a 2xx is what the v4 API sends (an HTML page from a proxy or a
  captive portal, an empty body, a 204 are refused) and what the transport raises;
- :mod:`.transport`: the :class:`PacedTransport` every SDK request goes through, whose one loop
  is attempt, decide, wait.

Who holds which pacer, policy and clock is the session's business
(:class:`code24ctl.cloudflare.session.CloudflareSession`): nothing here is process-wide.
"""

from code24ctl.cloudflare.pacing.answer import (
    BODY_LOG_CHARS,
    GAVE_UP,
    DeadlineExceeded,
    FailedAnswer,
    InvalidAnswer,
    check_answer,
    gave_up,
    log_exchange,
)
from code24ctl.cloudflare.pacing.ratelimit import (
    API_BUDGET_REQUESTS,
    API_BUDGET_WINDOW_S,
    API_PER_IP_REQUESTS,
    API_PER_IP_WINDOW_S,
    DEFAULT_HEADROOM,
    PER_IP_HEADROOM,
    SYSTEM_CLOCK,
    Clock,
    Pacer,
    PacerStats,
    SystemClock,
    parse_ratelimit,
)
from code24ctl.cloudflare.pacing.retry import (
    API_TIMEOUT_ENV_VAR,
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    Retry,
    RetryPolicy,
    api_timeout_from_env,
    decide,
    interactive_policy,
    repeatable,
    retry_after_seconds,
    sent_once,
)
from code24ctl.cloudflare.pacing.transport import PacedTransport, paced_http_client

__all__ = [
    "API_BUDGET_REQUESTS",
    "API_BUDGET_WINDOW_S",
    "API_PER_IP_REQUESTS",
    "API_PER_IP_WINDOW_S",
    "API_TIMEOUT_ENV_VAR",
    "BODY_LOG_CHARS",
    "DEFAULT_HEADROOM",
    "GAVE_UP",
    "IDEMPOTENT_METHODS",
    "PER_IP_HEADROOM",
    "RETRYABLE_STATUSES",
    "SYSTEM_CLOCK",
    "Clock",
    "DeadlineExceeded",
    "FailedAnswer",
    "InvalidAnswer",
    "PacedTransport",
    "Pacer",
    "PacerStats",
    "Retry",
    "RetryPolicy",
    "SystemClock",
    "api_timeout_from_env",
    "check_answer",
    "decide",
    "gave_up",
    "interactive_policy",
    "log_exchange",
    "paced_http_client",
    "parse_ratelimit",
    "repeatable",
    "retry_after_seconds",
    "sent_once",
]
