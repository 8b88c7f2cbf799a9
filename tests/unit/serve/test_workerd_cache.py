"""The cache ``serve --runtime workerd`` runs code from: miniflare and the account's Workers.

Others must not be able to swap that code: every folder is this user's, mode 0700, whatever
the umask, and a cache folder others can write (``CODE24_CACHE_DIR=/tmp``) is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from code24ctl.cloudflare.modules import Module
from code24ctl.cloudflare.worker_code import WorkerCode
from code24ctl.errors import UsageError
from code24ctl.serve.workerd.node import cache_dir, install_prefix, private_dir
from code24ctl.serve.workerd.plan import cached_code

CODE = WorkerCode(
    source="staging namespace ns/brand-worker",
    modules=(
        Module("index.js", b"export default {};", "application/javascript+module"),
        Module("lib/util.js", b"export const x = 1;", "application/javascript+module"),
    ),
    main_module="index.js",
    compatibility_date="2025-06-01",
)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: modes come from the code, not from the user's shell."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_account_code_is_cached_for_this_user_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    monkeypatch.setenv("CODE24_CACHE_DIR", str(tmp_path / "cache"))
    folder = cached_code(CODE)
    assert folder.parent == tmp_path / "cache" / "workers"
    for path in (tmp_path / "cache", folder.parent, folder, folder / "lib"):
        assert mode(path) == 0o700, path
    for name in ("index.js", "lib/util.js"):
        assert mode(folder / name) == 0o600, name
    assert (folder / "lib" / "util.js").read_bytes() == b"export const x = 1;"


def test_the_miniflare_install_folder_is_this_users_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CODE24_CACHE_DIR", raising=False)
    prefix = private_dir(install_prefix())
    assert prefix.parent == tmp_path / "xdg" / "code24ctl"
    assert mode(prefix) == 0o700 and mode(prefix.parent) == 0o700


def test_a_cache_folder_others_can_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp
    monkeypatch.setenv("CODE24_CACHE_DIR", str(shared))
    with pytest.raises(UsageError) as caught:
        cached_code(CODE)
    assert str(caught.value) == (
        f"the cache folder {shared} is writable by other users or not yours (mode 1777): "
        "serve will not run code kept there"
    )
    assert caught.value.hint == (
        f"run `chmod go-w {shared}`, or set CODE24_CACHE_DIR to a folder of your own"
    )
    assert caught.value.exit_code == 2
    assert list(shared.iterdir()) == []


def test_a_workers_folder_others_can_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE24_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "workers").mkdir(parents=True)
    (tmp_path / "cache" / "workers").chmod(0o777)
    with pytest.raises(UsageError, match="workers is writable by other users"):
        cached_code(CODE)


def test_a_relative_cache_dir_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODE24_CACHE_DIR", "cache")
    with pytest.raises(UsageError) as caught:
        cache_dir()
    assert str(caught.value) == "CODE24_CACHE_DIR=cache is not an absolute path"


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODE24_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_dir() == Path.home() / ".cache" / "code24ctl"
