"""The ``--watch`` loop: a change is reloaded once the file has been quiet for the settle time."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from code24ctl.serve.server import _watch


def test_a_file_written_in_two_steps_is_reloaded_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "namespaces.yaml"
    path.write_text("routes: [a, b, c, d, e, f, g, h]\n", encoding="utf-8")
    seen: list[str] = []

    async def main() -> None:
        watcher = asyncio.create_task(
            _watch(str(path), lambda: seen.append(path.read_text()), 0.02, 0.3)
        )
        await asyncio.sleep(0.1)
        with path.open("w", encoding="utf-8") as file:
            file.write("routes: [a, b, c]\n")  # the first half: valid, and short
            file.flush()
            os.fsync(file.fileno())
            await asyncio.sleep(0.2)  # the watcher polls many times meanwhile
            file.write("more: [d, e, f, g, h, i]\n")
        await asyncio.sleep(0.1)
        assert seen == []  # not yet quiet for the settle time
        await asyncio.sleep(0.5)
        watcher.cancel()

    asyncio.run(main())
    assert seen == ["routes: [a, b, c]\nmore: [d, e, f, g, h, i]\n"]


def test_without_a_change_nothing_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "namespaces.yaml"
    path.write_text("routes: []\n", encoding="utf-8")
    seen: list[int] = []

    async def main() -> None:
        watcher = asyncio.create_task(_watch(str(path), lambda: seen.append(1), 0.02, 0.05))
        await asyncio.sleep(0.3)
        watcher.cancel()

    asyncio.run(main())
    assert seen == []
