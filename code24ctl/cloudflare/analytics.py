"""Workers Analytics Engine: the dispatcher's data points, read back through the SQL API.

``dispatcher.js`` (its ``record`` function) writes one data point per request. The positions
below are the contract between the two; keep them in step:

======== ===========================================================================
index1   worker alias ("" when no route matched)
blob1    environment (the dispatcher's ENVIRONMENT)
blob2    route prefix ("" for the catch-all or no route)
blob3    method
blob4    fallback reason ("" when the worker's own answer passed through)
blob5    status class ("2xx" ... "5xx")
double1  status
double2  upstream status (0 = the worker never answered)
double3  dispatch milliseconds
double4  answer body bytes (-1 = streamed without a declared length)
======== ===========================================================================

The SQL API (``POST /accounts/{a}/analytics_engine/sql``, the query text as the body) answers
``{"meta": [...], "data": [...], "rows": n}`` outside the usual v4 envelope. Rows may be sampled:
each stands for ``_sample_interval`` requests, so counts are ``SUM(_sample_interval)`` and
quantiles ``quantileExactWeighted(q)(column, _sample_interval)``, as Cloudflare documents.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from code24ctl.cloudflare.client import api_call
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

log = logging.getLogger(__name__)

COLUMN_WORKER = "index1"
COLUMN_ENVIRONMENT = "blob1"
COLUMN_ROUTE = "blob2"
COLUMN_REASON = "blob4"
COLUMN_DISPATCH_MS = "double3"

GroupBy = Literal["worker", "route", "reason"]
GROUP_COLUMNS: dict[str, str] = {
    "worker": COLUMN_WORKER,
    "route": COLUMN_ROUTE,
    "reason": COLUMN_REASON,
}
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))

ANALYTICS_HINT = (
    "the token needs the Account Analytics Read permission (Account > Account Analytics > Read) "
    "to query Workers Analytics Engine"
)

_SINCE = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Analytics Engine keeps data for three months.
MAX_SINCE_S = 92 * 86400


def parse_since(text: str) -> int:
    """``90s``, ``15m``, ``1h``, ``7d`` -> seconds (usage error otherwise)."""
    found = _SINCE.match(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise UsageError(
            f"--since {text!r} is not a duration", hint="use a number and s, m, h or d: 15m, 1h, 7d"
        )
    seconds = int(found.group(1)) * _SECONDS[found.group(2)]
    if seconds > MAX_SINCE_S:
        raise UsageError(
            f"--since {text!r} reaches past what Analytics Engine keeps (three months)",
            hint="use at most 92d",
        )
    return seconds


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(environment: str, since_s: int) -> str:
    return (
        f"WHERE timestamp > NOW() - INTERVAL '{since_s}' SECOND "
        f"AND {COLUMN_ENVIRONMENT} = {_literal(environment)}"
    )


def counts_query(dataset: str, environment: str, since_s: int) -> str:
    """Requests (sample-weighted) per worker, route and fallback reason."""
    return (
        f"SELECT {COLUMN_WORKER} AS worker, {COLUMN_ROUTE} AS route, "
        f"{COLUMN_REASON} AS reason, SUM(_sample_interval) AS requests "
        f"FROM {dataset} {_where(environment, since_s)} "
        "GROUP BY worker, route, reason ORDER BY worker, route, reason FORMAT JSON"
    )


def latency_query(dataset: str, environment: str, since_s: int, by: GroupBy | None = None) -> str:
    """p50/p95/p99 dispatch milliseconds weighted by ``_sample_interval``; per ``by`` group."""
    quantiles = ", ".join(
        f"quantileExactWeighted({q:.2f})({COLUMN_DISPATCH_MS}, _sample_interval) AS {name}"
        for name, q in QUANTILES
    )
    if by is None:
        return f"SELECT {quantiles} FROM {dataset} {_where(environment, since_s)} FORMAT JSON"
    column = GROUP_COLUMNS[by]
    return (
        f"SELECT {column} AS {by}, {quantiles} FROM {dataset} {_where(environment, since_s)} "
        f"GROUP BY {by} ORDER BY {by} FORMAT JSON"
    )


@dataclass(frozen=True)
class SqlResult:
    """One answer of the SQL API."""

    meta: list[dict[str, Any]]
    data: list[dict[str, Any]]
    rows: int


def run_sql(session: CloudflareSession, sql: str) -> SqlResult:
    """POST ``sql`` to the account's Analytics Engine SQL API (through the paced SDK client)."""
    log.debug("Analytics Engine SQL: %s", sql)
    path = f"/accounts/{session.account_id}/analytics_engine/sql"
    try:
        with api_call("query Workers Analytics Engine"):
            answer = session.client.post(
                path,
                cast_to=object,
                content=sql.encode("utf-8"),
                options={"headers": {"Content-Type": "text/plain"}},
            )
    except CloudflareAPIError as exc:
        if exc.status in (401, 403) or exc.code == 10000:
            raise CloudflareAPIError(
                exc.message, code=exc.code, status=exc.status, hint=ANALYTICS_HINT
            ) from None
        raise
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise CloudflareAPIError(
            "query Workers Analytics Engine: the answer has no 'data' list",
            hint="check CLOUDFLARE_BASE_URL; the SQL API answers {meta, data, rows}",
        )
    data = [row for row in answer["data"] if isinstance(row, dict)]
    meta = [m for m in answer.get("meta") or [] if isinstance(m, dict)]
    rows = answer.get("rows")
    return SqlResult(meta=meta, data=data, rows=int(rows) if isinstance(rows, int) else len(data))


def number(value: Any) -> float:
    """A numeric cell: the SQL API may send 64-bit integers as strings (ClickHouse's default)."""
    if isinstance(value, bool):
        raise CloudflareAPIError(f"the SQL API answered {value!r} where a number belongs")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        raise CloudflareAPIError(f"the SQL API answered {value!r} where a number belongs") from None
