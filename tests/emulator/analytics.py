"""Workers Analytics Engine for the emulator: data points kept per (account, dataset), and the SQL
API (``POST /accounts/{a}/analytics_engine/sql``) answering the queries code24ctl sends.

Not a SQL engine. It evaluates one query shape, the one ``code24ctl stats`` uses::

    SELECT <item> [AS alias], ... FROM <dataset>
    [WHERE <cond> AND ...] [GROUP BY name, ...] [ORDER BY name, ...] [FORMAT JSON]

- items: a column (``index1``, ``blobN``, ``doubleN``, ``timestamp``, ``_sample_interval``,
  ``dataset``), ``SUM(column)``, ``count()``, ``quantileExactWeighted(q)(column, weight)``;
- conditions: ``timestamp > NOW() - INTERVAL 'n' SECOND|MINUTE|HOUR|DAY`` and
  ``column = 'text'``.

Anything else answers 422 with a plain-text message saying what it did not understand. Answers
are the documented JSON shape ``{"meta": [{name, type}], "data": [{...}], "rows": n}``, not the v4
envelope. UInt64 sums are sent as JSON strings, as ClickHouse's JSON format does by default
(Cloudflare does not document the typing, so clients must accept both).

Test hook: ``state.analytics.write(account_id, dataset, {"indexes": [...], "blobs": [...],
"doubles": [...]}, timestamp=..., sample_interval=...)``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

__all__ = ["AnalyticsStore", "SqlError", "answer_sql"]

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<table>[A-Za-z0-9_]+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+GROUP\s+BY\s+(?P<group>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+FORMAT\s+(?P<format>\w+))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COLUMN = re.compile(
    r"^(index1|blob([1-9]|1\d|20)|double([1-9]|1\d|20)|timestamp|_sample_interval|dataset)$"
)
_SUM = re.compile(r"^SUM\((\w+)\)$", re.IGNORECASE)
_COUNT = re.compile(r"^count\(\)$", re.IGNORECASE)
_QUANTILE = re.compile(r"^quantileExactWeighted\(([0-9.]+)\)\((\w+),\s*(\w+)\)$", re.IGNORECASE)
_SINCE = re.compile(
    r"^timestamp\s*>\s*NOW\(\)\s*-\s*INTERVAL\s*'(\d+)'\s*(SECOND|MINUTE|HOUR|DAY)$", re.IGNORECASE
)
_EQUALS = re.compile(r"^(\w+)\s*=\s*'((?:[^'\\]|\\.)*)'$", re.DOTALL)
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class SqlError(ValueError):
    """A query outside the shape this emulator evaluates."""


@dataclass(frozen=True)
class StoredPoint:
    """One data point as the dataset holds it."""

    timestamp: float
    sample_interval: int
    index1: str
    blobs: tuple[str, ...]
    doubles: tuple[float, ...]

    def column(self, name: str, dataset: str) -> Any:
        if name == "index1":
            return self.index1
        if name == "timestamp":
            return self.timestamp
        if name == "_sample_interval":
            return self.sample_interval
        if name == "dataset":
            return dataset
        if name.startswith("blob"):
            k = int(name[4:]) - 1
            return self.blobs[k] if k < len(self.blobs) else ""
        k = int(name[6:]) - 1
        return self.doubles[k] if k < len(self.doubles) else 0.0


@dataclass
class AnalyticsStore:
    """Every data point written, per (account, dataset)."""

    _points: dict[tuple[str, str], list[StoredPoint]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.time

    def write(
        self,
        account_id: str,
        dataset: str,
        point: Mapping[str, Any],
        *,
        timestamp: float | None = None,
        sample_interval: int = 1,
    ) -> None:
        """Keep a data point shaped as ``writeDataPoint`` takes it (``indexes``, ``blobs``,
        ``doubles``); ``sample_interval`` > 1 stands for that many sampled-out requests."""
        indexes = list(point.get("indexes") or [])
        stored = StoredPoint(
            timestamp=self.clock() if timestamp is None else timestamp,
            sample_interval=sample_interval,
            index1=str(indexes[0]) if indexes and indexes[0] is not None else "",
            blobs=tuple("" if b is None else str(b) for b in point.get("blobs") or []),
            doubles=tuple(float(d) for d in point.get("doubles") or []),
        )
        with self._lock:
            self._points[(account_id, dataset)].append(stored)

    def points(self, account_id: str, dataset: str) -> list[StoredPoint]:
        """The dataset's points, oldest first."""
        with self._lock:
            return list(self._points.get((account_id, dataset), []))


# --- Evaluation -------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, quoted, current = [], 0, False, []
    for i, char in enumerate(text):
        if char == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


@dataclass(frozen=True)
class _Item:
    name: str
    kind: str  # column | sum | count | quantile
    column: str = ""
    level: float = 0.0
    weight: str = ""

    @property
    def type(self) -> str:
        if self.kind in ("sum", "count"):
            return "UInt64" if self.column in ("", "_sample_interval") else "Float64"
        if self.kind == "quantile":
            return "Float64"
        if self.column.startswith("double"):
            return "Float64"
        if self.column == "_sample_interval":
            return "UInt32"
        if self.column == "timestamp":
            return "DateTime"
        return "String"


def _column(name: str) -> str:
    if not _COLUMN.match(name):
        raise SqlError(f"unknown column {name!r}")
    return name


def _item(text: str) -> _Item:
    found = re.match(r"^(.+?)\s+AS\s+(\w+)$", text, re.IGNORECASE | re.DOTALL)
    expr, alias = (found.group(1).strip(), found.group(2)) if found else (text.strip(), None)
    if m := _SUM.match(expr):
        return _Item(alias or expr, "sum", _column(m.group(1)))
    if _COUNT.match(expr):
        return _Item(alias or expr, "count")
    if m := _QUANTILE.match(expr):
        return _Item(
            alias or expr, "quantile", _column(m.group(2)), float(m.group(1)), _column(m.group(3))
        )
    return _Item(alias or expr, "column", _column(expr))


def _conditions(where: str | None, now: float) -> list[Callable[[StoredPoint, str], bool]]:
    if not where:
        return []
    tests: list[Callable[[StoredPoint, str], bool]] = []
    for part in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
        if m := _SINCE.match(part.strip()):
            cutoff = now - int(m.group(1)) * _UNITS[m.group(2).lower()]
            tests.append(lambda p, _d, cutoff=cutoff: p.timestamp > cutoff)
        elif m := _EQUALS.match(part.strip()):
            name, value = _column(m.group(1)), re.sub(r"\\(.)", r"\1", m.group(2))
            tests.append(lambda p, d, name=name, value=value: str(p.column(name, d)) == value)
        else:
            raise SqlError(f"condition not understood: {part.strip()!r}")
    return tests


def _quantile_exact_weighted(level: float, pairs: list[tuple[float, float]]) -> float:
    """ClickHouse's quantileExactWeighted: the first value (ascending) whose cumulative weight
    reaches ``level`` of the total."""
    ordered = sorted(pairs)
    total = sum(weight for _, weight in ordered)
    if total <= 0:
        return float("nan")
    threshold, running = level * total, 0.0
    for value, weight in ordered:
        running += weight
        if running >= threshold:
            return value
    return ordered[-1][0]


def evaluate(store: AnalyticsStore, account_id: str, sql: str) -> dict[str, Any]:
    """Run ``sql`` over the account's points; the SQL API's JSON answer."""
    found = _QUERY.match(sql)
    if found is None:
        raise SqlError("only SELECT ... FROM <dataset> [WHERE] [GROUP BY] [ORDER BY] is emulated")
    if found.group("format") and found.group("format").upper() != "JSON":
        raise SqlError(f"FORMAT {found.group('format')} is not emulated (only JSON)")
    dataset = found.group("table")
    items = [_item(text) for text in _split(found.group("select"))]
    tests = _conditions(found.group("where"), store.clock())
    points = [
        p for p in store.points(account_id, dataset) if all(test(p, dataset) for test in tests)
    ]
    group_names = _split(found.group("group") or "")
    by_name = {item.name: item for item in items}
    keys: list[str] = []
    for name in group_names:
        item = by_name.get(name) or _Item(name, "column", _column(name))
        if item.kind != "column":
            raise SqlError(f"GROUP BY {name!r} is not a column")
        keys.append(item.column)

    groups: dict[tuple[Any, ...], list[StoredPoint]] = defaultdict(list)
    for point in points:
        groups[tuple(point.column(k, dataset) for k in keys)].append(point)
    if not keys and not groups and any(i.kind != "column" for i in items):
        groups[()] = []  # an aggregate over no rows still answers one row

    data: list[dict[str, Any]] = []
    for members in groups.values():
        row: dict[str, Any] = {}
        for item in items:
            if item.kind == "column":
                if item.column not in keys and keys:
                    raise SqlError(f"{item.column!r} is neither grouped nor aggregated")
                row[item.name] = members[0].column(item.column, dataset) if members else ""
            elif item.kind == "count":
                row[item.name] = str(len(members))
            elif item.kind == "sum":
                total = sum(p.column(item.column, dataset) for p in members)
                row[item.name] = str(int(total)) if item.type == "UInt64" else float(total)
            else:
                pairs = [
                    (float(p.column(item.column, dataset)), float(p.column(item.weight, dataset)))
                    for p in members
                ]
                value = _quantile_exact_weighted(item.level, pairs)
                row[item.name] = None if value != value else value  # NaN is not JSON
        data.append(row)
    for name in reversed(_split(found.group("order") or "")):
        plain = re.sub(r"\s+ASC$", "", name, flags=re.IGNORECASE)
        data.sort(key=lambda row, plain=plain: str(row.get(plain, "")))
    return {
        "meta": [{"name": item.name, "type": item.type} for item in items],
        "data": data,
        "rows": len(data),
    }


def answer_sql(store: AnalyticsStore, account_id: str, body: bytes) -> Response:
    """The SQL API's answer to one POST: the JSON result, or 422 with what was not understood."""
    try:
        return JSONResponse(evaluate(store, account_id, body.decode("utf-8")))
    except (SqlError, UnicodeDecodeError) as exc:
        return PlainTextResponse(f"emulated Analytics Engine SQL: {exc}", status_code=422)
