"""``code24ctl serve``: the dispatch rules of :mod:`code24ctl.dispatch.routing` over HTTP.

:mod:`.app` is the raw ASGI application, :mod:`.server` runs it under uvicorn, :mod:`.demo`
holds the built-in sample workers. Importing any of them pulls in uvicorn (and the demo,
aiohttp), so only the serve command (and tests) do.
"""
