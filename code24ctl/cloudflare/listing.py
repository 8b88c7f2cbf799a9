"""Page-numbered listings that stop: at ``total_pages``, on a short or empty page, on a page
that repeats the one before (a server ignoring ``page``), and at a hard cap.

The SDK's auto-pagination asks for the next page as long as the last one was not empty, so a
server that ignores ``page`` makes it loop without end. Every page-numbered listing of
code24ctl goes through :func:`numbered_pages` instead. A listing the SDK reads as one
unpaginated page (a zone's Worker routes) goes through :func:`single_page`, which refuses an
answer that says it holds only part of the list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from code24ctl.errors import CloudflareAPIError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import PageListener

log = logging.getLogger(__name__)

#: No listing of ours needs more pages than this; beyond it the answer is not believed.
MAX_PAGES = 100


def numbered_pages(
    fetch: Callable[[int], Any],
    what: str,
    *,
    key: Callable[[Any], object] = lambda item: getattr(item, "id", item),
    max_pages: int = MAX_PAGES,
    pages: PageListener | None = None,
) -> Iterator[Any]:
    """The items of ``fetch(1)``, ``fetch(2)``, ... (each an SDK page: ``.result``,
    ``.result_info``), until the listing is over; ``pages`` (a session's listener) is told of
    each page read.

    Raises :class:`CloudflareAPIError` past ``max_pages`` pages, naming ``what``.
    """
    previous: list[object] | None = None
    for number in range(1, max_pages + 1):
        page = fetch(number)
        items = list(getattr(page, "result", None) or [])
        keys = [key(item) for item in items]
        if previous is not None and keys == previous:
            log.warning(
                "%s: page %d repeats page %d; the server ignores paging", what, number, number - 1
            )
            return
        yield from items
        info = getattr(page, "result_info", None)
        total_pages = _int(info, "total_pages")
        per_page = _int(info, "per_page")
        if pages is not None:
            pages(what, number, total_pages)
        if not items or (total_pages is not None and number >= total_pages):
            return
        if per_page is not None and len(items) < per_page:
            return
        previous = keys
    raise CloudflareAPIError(
        f"{what}: more than {max_pages} pages; stopped (is the API paging correctly?)",
        hint="retry later; if it persists, check CLOUDFLARE_BASE_URL",
    )


def single_page(page: Any, what: str) -> list[Any]:
    """The items of a listing the SDK reads as one unpaginated page (``SyncSinglePage``).

    Raises :class:`CloudflareAPIError` when the answer's ``result_info`` says there is more
    (``total_pages`` over 1, ``total_count`` over the items, or a ``cursor``): working from a
    partial list (a route missed is a route deploy would create twice) is worse than stopping.
    """
    items = list(getattr(page, "result", None) or [])
    # The SDK's single page has no result_info field: an answer's one is kept as a plain dict.
    info = getattr(page, "result_info", None)
    total_pages = _int(info, "total_pages")
    total_count = _int(info, "total_count")
    cursor = _value(info, "cursor")
    more = (
        (total_pages is not None and total_pages > 1)
        or (total_count is not None and total_count > len(items))
        or (isinstance(cursor, str) and cursor != "")
    )
    if more:
        held = f" of {total_count}" if total_count is not None else ""
        raise CloudflareAPIError(
            f"{what}: the answer holds {len(items)}{held} and says there is more, but this "
            "listing is one page; stopped rather than work from a partial list",
            hint="report this: the API pages a listing the SDK reads as one page",
        )
    return items


def _value(info: Any, name: str) -> Any:
    if info is None:
        return None
    if isinstance(info, dict):
        return info.get(name)
    value = getattr(info, name, None)
    if value is None and isinstance(getattr(info, "model_extra", None), dict):
        value = info.model_extra.get(name)
    return value


def _int(info: Any, name: str) -> int | None:
    value = _value(info, name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
