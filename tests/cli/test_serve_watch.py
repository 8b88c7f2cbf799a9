"""``serve --watch``: a config written in steps is reloaded once it settles, never half-read;
a reload that drops routes says which."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.serve_process import ServeProcess, repo_config
from tests.support.staging import ALIASES
from tests.support.upstreams import ServeHarness, send

EXTRA = ("/r6", "/r7", "/r8")


def _config(urls: dict[str, str], extra: tuple[str, ...]) -> dict[str, Any]:
    """The repo's config with ``extra`` routes to brand-worker, ``routes`` the last key (so a
    file cut in the middle of its routes is still valid YAML, as in the issue)."""
    data = repo_config()
    data["environments"]["local"]["upstreams"] = urls
    routes = data.pop("routes") + [{"prefix": p, "worker": "brand-worker"} for p in extra]
    return {**data, "routes": routes}


def _wait_for(serve: ServeProcess, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in serve.stderr():
        assert time.monotonic() < deadline, f"never saw {text!r} in:\n{serve.stderr()}"
        time.sleep(0.05)


def _serving(tmp_path: Path, workers: ServeHarness, extra: tuple[str, ...]) -> ServeProcess:
    workers.workers.set({"brand-worker": {"behaviour": "json", "json": {"ok": True}}})
    urls = {"brand-worker": workers.workers.urls["brand-worker"]}
    config = tmp_path / "namespaces.yaml"
    config.write_text(yaml.safe_dump(_config(urls, extra), sort_keys=False), encoding="utf-8")
    return ServeProcess(tmp_path, "--watch", config=config)


def test_a_config_written_in_two_halves_is_never_served_half(tmp_path: Path) -> None:
    with ServeHarness(ALIASES, with_serve=False) as workers:
        serve = _serving(tmp_path, workers, EXTRA)
        config = tmp_path / "namespaces.yaml"
        urls = {"brand-worker": workers.workers.urls["brand-worker"]}
        try:
            assert send(serve.port, "GET", "/r8/x")["status"] == 200
            text = yaml.safe_dump(_config(urls, (*EXTRA, "/r9")), sort_keys=False)
            cut = text.index("- prefix: /elite/design")  # 3 of the 9 routes before it
            assert len(yaml.safe_load(text[:cut])["routes"]) == 3  # the half is valid

            statuses: list[int] = []
            done = threading.Event()

            def poll() -> None:
                while not done.is_set():
                    statuses.append(send(serve.port, "GET", "/r8/x")["status"])
                    time.sleep(0.02)

            poller = threading.Thread(target=poll)
            poller.start()
            try:
                with config.open("w", encoding="utf-8") as file:
                    file.write(text[:cut])
                    file.flush()
                    os.fsync(file.fileno())
                    time.sleep(0.3)  # a writer between two steps, within the quiet period
                    file.write(text[cut:])
                _wait_for(serve, "reloaded ")
                assert send(serve.port, "GET", "/r9/x")["status"] == 200
                time.sleep(1.5)  # no second reload follows
            finally:
                done.set()
                poller.join()
            assert statuses and set(statuses) == {200}
            reloads = [line for line in serve.stderr().splitlines() if "reloaded " in line]
            assert len(reloads) == 1
            assert reloads[0].endswith(": 9 routes")
            assert "dropped" not in serve.stderr()
        finally:
            assert serve.stop() == 0


def test_a_reload_that_drops_routes_names_them(tmp_path: Path) -> None:
    with ServeHarness(ALIASES, with_serve=False) as workers:
        serve = _serving(tmp_path, workers, EXTRA)
        config = tmp_path / "namespaces.yaml"
        urls = {"brand-worker": workers.workers.urls["brand-worker"]}
        try:
            data = _config(urls, EXTRA)
            kept = data["routes"][:3]
            dropped = sorted(r["prefix"] for r in data["routes"][3:])
            assert len(data["routes"]) == 8
            config.write_text(yaml.safe_dump({**data, "routes": kept}), encoding="utf-8")
            _wait_for(serve, "dropped")
            assert (
                "warning: the reload dropped 5 route(s), which now answer route_not_found: "
                + ", ".join(dropped)
            ) in serve.stderr()
            assert send(serve.port, "GET", "/r8/x")["status"] == 404
        finally:
            assert serve.stop() == 0
