"""Example requests for serve's start-up banner, drawn from the loaded config."""

from __future__ import annotations

import json
import shlex

from code24ctl.config import Config

MAX_EXAMPLES = 5


def example_requests(config: Config, url: str, *, limit: int = MAX_EXAMPLES) -> list[str]:
    """curl lines for the first ``limit`` routes: each route's ``probe`` sample when it has
    one (method, path, headers, body), else a GET of its prefix."""
    lines: list[str] = []
    for route in config.routes[:limit]:
        sample = route.probe
        if sample is None:
            path = route.prefix.rstrip("/") + "/"
            lines.append(f"curl -si {shlex.quote(url + path)}")
            continue
        words = ["curl", "-si"]
        if sample.method != "GET":
            words += ["-X", sample.method]
        words.append(url + sample.path)
        for name, value in sample.headers.items():
            words += ["-H", f"{name}: {value}"]
        if sample.has_json:
            words += ["-H", "content-type: application/json", "-d", json.dumps(sample.json_body)]
        elif sample.body is not None:
            words += ["-d", sample.body]
        lines.append(shlex.join(words))
    return lines
