"""Node.js and the pinned miniflare that ``serve --runtime workerd`` needs.

Only this runtime needs them: ``pip install code24ctl`` alone serves with the Python runtime.
miniflare (which brings workerd) is installed once, on first use, into a per-user cache folder
(``~/.cache/code24ctl/miniflare-<version>``, or under ``$CODE24_CACHE_DIR`` /
``$XDG_CACHE_HOME``). ``CODE24_NODE_MODULES`` points the runtime at an existing
``node_modules`` folder holding miniflare instead (the tests use ``tests/js/node_modules``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from code24ctl.constants import TOKEN_ENV_VAR
from code24ctl.errors import UsageError

#: The miniflare release the runtime is written and tested against (tests/js/package.json pins
#: the same one; a test holds them equal).
MINIFLARE_VERSION = "4.20260426.0"
MIN_NODE_MAJOR = 20
NODE_MODULES_ENV_VAR = "CODE24_NODE_MODULES"
CACHE_ENV_VAR = "CODE24_CACHE_DIR"
NODE_ENV_VAR = "CODE24_NODE"
INSTALL_TIMEOUT_S = 600


#: Variables node, npm, miniflare and workerd never get: the API token and every other
#: Cloudflare credential or account setting (wrangler's CLOUDFLARE_* and legacy CF_* names).
#: Local Workers get their secrets from .dev.vars only, so none of them needs these.
_WITHHELD_PREFIXES = ("CLOUDFLARE_", "CF_")


def child_environment() -> dict[str, str]:
    """This process's environment without the Cloudflare credentials, for node and npm."""
    return {
        name: value
        for name, value in os.environ.items()
        if name != TOKEN_ENV_VAR and not name.upper().startswith(_WITHHELD_PREFIXES)
    }


@dataclass(frozen=True)
class NodeRuntime:
    """A usable ``node`` and the miniflare package folder it runs."""

    node: str
    node_version: str
    miniflare_dir: Path


def cache_dir() -> Path:
    """code24ctl's per-user cache folder (not created here).

    ``$CODE24_CACHE_DIR`` must be absolute: a relative one would put production's code and
    miniflare wherever serve happens to run. A relative ``$XDG_CACHE_HOME`` is ignored, as the
    XDG Base Directory specification asks.
    """
    explicit = os.environ.get(CACHE_ENV_VAR)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            raise UsageError(
                f"{CACHE_ENV_VAR}={explicit} is not an absolute path",
                hint=f"set {CACHE_ENV_VAR} to an absolute path, or unset it",
            )
        return path
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not Path(base).expanduser().is_absolute():
        base = str(Path.home() / ".cache")
    return Path(base).expanduser() / "code24ctl"


def private_dir(path: Path) -> Path:
    """``path`` below :func:`cache_dir`, its folders created readable and writable by this user
    only (``$CODE24_CACHE_DIR``'s parents excepted).

    The cache holds code that serve runs (miniflare, the account's Workers): a folder others
    can write would let them swap it. Each folder from the cache folder down must be this
    user's and not writable by group or others, whoever made it (``$CODE24_CACHE_DIR=/tmp`` is
    refused).
    """
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _refuse_shared(root)
    folder = root
    for part in path.relative_to(root).parts:
        folder = folder / part
        folder.mkdir(exist_ok=True, mode=0o700)
        _refuse_shared(folder)
    return path


def _refuse_shared(folder: Path) -> None:
    status = folder.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise UsageError(
            f"the cache folder {folder} is writable by other users or not yours "
            f"(mode {status.st_mode & 0o7777:o}): serve will not run code kept there",
            hint=f"run `chmod go-w {shlex.quote(str(folder))}`, or set {CACHE_ENV_VAR} to a "
            "folder of your own",
        )


def install_prefix() -> Path:
    """Where the pinned miniflare is installed (its ``node_modules`` is below)."""
    return cache_dir() / f"miniflare-{MINIFLARE_VERSION}"


def install_command() -> str:
    """The one command that installs the pinned miniflare where the runtime looks for it."""
    return (
        f"npm install --prefix {shlex.quote(str(install_prefix()))} --no-audit --no-fund "
        f"miniflare@{MINIFLARE_VERSION}"
    )


def find_node() -> tuple[str, str]:
    """``node`` on PATH (or ``$CODE24_NODE``) and its version; refuses one older than 20."""
    node = os.environ.get(NODE_ENV_VAR) or shutil.which("node")
    if not node:
        raise UsageError(
            "`serve --runtime workerd` needs Node.js 20 or later, and `node` is not on PATH",
            hint="install Node.js 20+ (https://nodejs.org), or serve with the Python runtime "
            "(the default, --runtime python)",
        )
    try:
        answer = subprocess.run(
            [node, "--version"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=child_environment(),
        )
    except OSError as exc:
        raise UsageError(f"cannot run {node}: {exc.strerror or exc}") from None
    version = answer.stdout.strip()
    found = re.match(r"v(\d+)\.", version)
    if found is None or int(found.group(1)) < MIN_NODE_MAJOR:
        raise UsageError(
            f"`serve --runtime workerd` needs Node.js {MIN_NODE_MAJOR} or later; "
            f"{node} is {version or 'of unknown version'}",
            hint="install Node.js 20+ (https://nodejs.org)",
        )
    return node, version


def miniflare_dir() -> Path | None:
    """The miniflare package folder the runtime would use, when it is there."""
    explicit = os.environ.get(NODE_MODULES_ENV_VAR)
    if explicit:
        folder = Path(explicit).expanduser() / "miniflare"
        if not (folder / "package.json").is_file():
            # Pointed somewhere on purpose: never fall back to installing elsewhere.
            raise UsageError(
                f"{NODE_MODULES_ENV_VAR}={explicit} holds no miniflare package",
                hint=f"run `npm install --prefix <folder> miniflare@{MINIFLARE_VERSION}` and "
                f"point {NODE_MODULES_ENV_VAR} at <folder>/node_modules, or unset it",
            )
        return folder
    folder = install_prefix() / "node_modules" / "miniflare"
    return folder if (folder / "package.json").is_file() else None


def install_miniflare(progress: Callable[[str], None]) -> Path:
    """``npm install`` the pinned miniflare into :func:`install_prefix`, showing npm's progress
    through ``progress`` line by line. Offline or without npm: a UsageError naming the one
    command to run."""
    npm = shutil.which("npm")
    command = install_command()
    if npm is None:
        raise UsageError(
            "`serve --runtime workerd` needs miniflare, and npm is not on PATH to install it",
            hint=f"install npm, then run: {command}",
        )
    prefix = private_dir(install_prefix())
    progress(f"installing miniflare {MINIFLARE_VERSION} (workerd) into {prefix} (once) ...")
    try:
        process = subprocess.Popen(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--progress=false",
                "--loglevel=http",
                f"miniflare@{MINIFLARE_VERSION}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_environment(),
        )
    except OSError as exc:
        raise UsageError(f"cannot run npm: {exc.strerror or exc}", hint=f"run: {command}") from None
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        if line:
            tail = [*tail[-19:], line]
            progress(f"  npm: {line}")
    status = process.wait(INSTALL_TIMEOUT_S)
    folder = prefix / "node_modules" / "miniflare"
    if status != 0 or not (folder / "package.json").is_file():
        raise UsageError(
            f"installing miniflare {MINIFLARE_VERSION} failed (npm exit status {status}; offline?)",
            hint=f"run this once when online: {command}",
        )
    progress(f"installed miniflare {MINIFLARE_VERSION}")
    return folder


def node_runtime(progress: Callable[[str], None], *, install: bool = True) -> NodeRuntime:
    """Node 20+ and miniflare, installing the pinned miniflare on first use."""
    node, version = find_node()
    folder = miniflare_dir()
    if folder is None:
        if not install:
            raise UsageError(
                f"miniflare {MINIFLARE_VERSION} is not installed", hint=f"run: {install_command()}"
            )
        folder = install_miniflare(progress)
    return NodeRuntime(node=node, node_version=version, miniflare_dir=folder)


def runner_script() -> Path:
    """The packaged Node.js side of the runtime."""
    return Path(__file__).with_name("runner.mjs")
