"""Built-in sample workers for ``code24ctl serve --demo``.

Each Code24 alias answers realistic JSON for its probe path, except ``designer-worker``, which
answers what the real one did on a bad day: an HTML ``502 Bad Gateway`` page. Run behind serve,
that page comes out as the designer's configured JSON fallback, which is the whole point of the
dispatcher. An alias the demo does not know answers a generic JSON document.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from aiohttp import web

HTML_ALIAS = "designer-worker"

BAD_GATEWAY_PAGE = """<!DOCTYPE html>
<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
"""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _competitive(path: str, data: dict[str, Any]) -> dict[str, Any]:
    industry = str(data.get("industry", "saas"))
    names = data.get("competitors") or ["acme"]
    return {
        "worker": "competitive-analysis",
        "path": path,
        "industry": industry,
        "competitors": [
            {"name": str(name), "positioning": "incumbent, broad suite", "threat": "medium"}
            for name in names
        ],
        "summary": f"The {industry} market is crowded at the top and open in the mid-market.",
        "generated_at": _now(),
    }


def _market(path: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "worker": "market-research",
        "path": path,
        "market": data.get("market", "developer tools"),
        "region": data.get("region", "EU"),
        "size_usd_millions": 1840,
        "growth_pct": 11.5,
        "segments": ["startups", "mid-market", "enterprise"],
        "generated_at": _now(),
    }


def _brand(path: str, data: dict[str, Any]) -> dict[str, Any]:
    company = str(data.get("company", "Code24"))
    return {
        "worker": "brand-worker",
        "path": path,
        "company": company,
        "tone": data.get("tone", "confident"),
        "tagline": f"{company}: ship the idea, not the boilerplate.",
        "palette": ["#0B1F3A", "#2F80ED", "#F2C94C"],
        "generated_at": _now(),
    }


def _developer(path: str, data: dict[str, Any]) -> dict[str, Any]:
    topic = str(data.get("topic", "release notes"))
    return {
        "worker": "developer-worker",
        "path": path,
        "topic": topic,
        "content": f"# {topic.title()}\n\n- Faster builds\n- Clearer errors\n",
        "format": "markdown",
        "generated_at": _now(),
    }


def _generic(alias: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def answer(path: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"worker": alias, "path": path, "ok": True, "generated_at": _now()}

    return answer


ANSWERS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "competitive-analysis": _competitive,
    "market-research": _market,
    "brand-worker": _brand,
    "developer-worker": _developer,
}


def describe_demo(aliases: Iterable[str]) -> str:
    """What the demo workers do for these aliases (the config's own, not Code24's)."""
    names = sorted(aliases)
    samples = [a for a in names if a in ANSWERS]
    generic = [a for a in names if a not in ANSWERS and a != HTML_ALIAS]
    parts = []
    if samples:
        parts.append(f"{', '.join(samples)} answer sample JSON for their routes")
    if generic:
        parts.append(f"{', '.join(generic)} answer a small JSON object naming the worker and path")
    if HTML_ALIAS in names:
        parts.append(
            f"{HTML_ALIAS} answers an HTML '502 Bad Gateway' page, which the dispatcher turns "
            "into its JSON fallback"
        )
    return "demo: built-in sample workers answer every alias: " + "; ".join(parts) + "."


def _handler(alias: str) -> Callable[[web.BaseRequest], Any]:
    from aiohttp import web

    build = ANSWERS.get(alias) or _generic(alias)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        if alias == HTML_ALIAS:
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return web.json_response(build(request.path, data))

    return handle


def _loopback_port(url: str | None) -> int:
    """The port of a configured 127.0.0.1/localhost upstream URL, else 0 (any free port)."""
    if not url:
        return 0
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return 0
    return parts.port


@contextlib.asynccontextmanager
async def running_demo_workers(
    aliases: Iterable[str],
    configured: Mapping[str, str] | None = None,
    *,
    base_port: int | None = None,
) -> AsyncIterator[dict[str, str]]:
    """Start one sample worker per alias on 127.0.0.1; yields alias -> URL.

    By default each takes the port of its configured upstream URL when that port is free, so
    the local environment's URLs (and ``probe --env local --direct``) reach the demo workers;
    a busy port falls back to any free one. ``base_port`` 0 means any free ports; N means
    consecutive ports from N (a busy one is an error).
    """
    from aiohttp import web

    runners: list[web.ServerRunner] = []
    urls: dict[str, str] = {}
    try:
        for number, alias in enumerate(aliases):
            runner = web.ServerRunner(web.Server(_handler(alias)), access_log=None)
            await runner.setup()
            runners.append(runner)
            if base_port is None:
                wanted = _loopback_port((configured or {}).get(alias))
            else:
                wanted = base_port + number if base_port else 0
            try:
                await web.TCPSite(runner, "127.0.0.1", wanted).start()
            except OSError as exc:
                if not wanted or base_port is not None:
                    raise UsageError(
                        f"cannot start the demo worker {alias} on 127.0.0.1:{wanted}: "
                        f"{os.strerror(exc.errno) if exc.errno else exc}",
                        hint="choose other ports with --demo-ports N (N, N+1, ... one per "
                        "worker), or --demo-ports auto for any free ones",
                    ) from None
                await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            urls[alias] = f"http://127.0.0.1:{port}"
        yield urls
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
