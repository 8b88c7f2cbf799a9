"""Page-numbered listings that stop: at ``total_pages``, on a short or empty page, on a page
that repeats the one before (a server ignoring ``page``), and at a hard cap.

The SDK's auto-pagination asks for the next page as long as the last one was not empty, so a
server that ignores ``page`` makes it loop without end. Every page-numbered listing of
code24ctl goes through :func:`numbered_pages` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from code24ctl.errors import CloudflareAPIError

log = logging.getLogger(__name__)

#: No listing of ours needs more pages than this; beyond it the answer is not believed.
MAX_PAGES = 100


def numbered_pages(
    fetch: Callable[[int], Any],
    what: str,
    *,
    key: Callable[[Any], object] = lambda item: getattr(item, "id", item),
    max_pages: int = MAX_PAGES,
) -> Iterator[Any]:
    """The items of ``fetch(1)``, ``fetch(2)``, ... (each an SDK page: ``.result``,
    ``.result_info``), until the listing is over.

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
        if not items or (total_pages is not None and number >= total_pages):
            return
        if per_page is not None and len(items) < per_page:
            return
        previous = keys
    raise CloudflareAPIError(
        f"{what}: more than {max_pages} pages; stopped (is the API paging correctly?)",
        hint="retry later; if it persists, check CLOUDFLARE_BASE_URL",
    )


def _int(info: Any, name: str) -> int | None:
    if info is None:
        return None
    value = getattr(info, name, None)
    if value is None and isinstance(getattr(info, "model_extra", None), dict):
        value = info.model_extra.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
