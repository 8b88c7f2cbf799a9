"""What ``bind``, ``unbind`` and ``workers`` share: the thread pool that runs one job per
Worker, the ``--concurrency`` check, and what a run cost in API requests (:class:`ApiUsage`,
the pacer's counters before and after)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from code24ctl.cloudflare.pacing import PacerStats
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY, MAX_WORKER_CONCURRENCY
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    pass


DEFAULT_CONCURRENCY = DEFAULT_WORKER_CONCURRENCY


MAX_CONCURRENCY = MAX_WORKER_CONCURRENCY


class ApiUsage(BaseModel):
    """What a run cost in API requests (retries included)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers met
    server_errors: int = 0  # 5xx answers met (HTML edge pages included)
    waited_s: float = 0.0  # time spent waiting for the budget


_T = TypeVar("_T")


_R = TypeVar("_R")


def checked_concurrency(value: int) -> int:
    if not 1 <= value <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, not {value}")
    return value


def run_all(work: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    if workers == 1 or len(items) <= 1:
        return [work(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code24ctl")
    try:
        futures: list[Future[_R]] = [pool.submit(work, item) for item in items]
        return [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def snapshot(stats: PacerStats) -> PacerStats:
    return PacerStats(**vars(stats))


def usage_between(before: PacerStats, after: PacerStats) -> ApiUsage:
    return ApiUsage(
        requests=after.sent - before.sent,
        retries=after.retried - before.retried,
        throttled=after.throttled - before.throttled,
        server_errors=after.server_errors - before.server_errors,
        waited_s=round(after.waited_s - before.waited_s, 3),
    )
