"""The one place serve's upstream HTTP client is built.

One aiohttp session, pooled, shared by every request (httpx's async pool degrades under
concurrency, encode/httpx#3215). It is a transparent hop: no cookies kept between clients, no
decompression (bodies pass byte for byte), no headers of its own, no timeouts of its own (each
worker's ``timeout_ms`` governs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

# Below the 5 s idle timeout of uvicorn, Node and workerd servers, so a pooled connection is
# dropped here before the worker drops it under a request.
KEEPALIVE_TIMEOUT_S = 4.0
MAX_CONNECTIONS = 512


def make_session() -> aiohttp.ClientSession:
    """A new upstream session; call inside the running event loop, close at shutdown."""
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=MAX_CONNECTIONS,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        # Forward the client's headers only; aiohttp would add Accept, Accept-Encoding,
        # User-Agent and a guessed Content-Type of its own.
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        trust_env=False,
    )
