"""A worker's code from a local ``path`` (one module file, or a folder of modules), and the
choice between that and the account Worker a configured alias names (:func:`load_worker_code`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, is_not_found
from code24ctl.cloudflare.modules import CONTENT_TYPES, Module, content_type_for
from code24ctl.cloudflare.worker_code import (
    ENTRY_TYPES,
    WorkerCode,
    account_worker_schedules,
    download_account_worker,
)
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig

#: Entry modules a folder may have, in order of preference.
ENTRY_CANDIDATES = ("index.js", "index.mjs", "worker.js", "worker.mjs", "main.py", "index.py")
#: Files in a worker folder that are tooling, not modules.
SKIPPED_FILES = frozenset(
    {"package.json", "package-lock.json", "tsconfig.json", "wrangler.json", "wrangler.jsonc"}
)
#: Sources that must be built into JavaScript before an upload (wrangler bundles them; we do not).
UNBUILT_SUFFIXES = frozenset({".ts", ".mts", ".cts", ".tsx", ".jsx"})
BUILD_IT_FIRST = (
    "build it first (e.g. `npx esbuild src/index.ts --bundle --format=esm "
    "--outfile=dist/index.js`) and point the worker's `path` at the built .js file or folder"
)
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__"})


def read_local_worker(
    path: Path,
    *,
    compatibility_date: str | None,
    compatibility_flags: Sequence[str] = (),
    shown_as: str | None = None,
) -> WorkerCode:
    """Read one module file, or every module in a folder, as a Worker to upload.

    A folder's entry module is the first of :data:`ENTRY_CANDIDATES` it has at its top, else
    its only top-level JavaScript or Python module. Module names are paths relative to the
    folder with ``/``. Only files with a module extension
    (:data:`~code24ctl.cloudflare.modules.CONTENT_TYPES`) are uploaded; hidden files,
    ``node_modules`` and tooling files are skipped.
    """
    source = f"path {shown_as or path}"
    if path.is_file():
        if path.suffix in UNBUILT_SUFFIXES:
            raise UsageError(
                f"{source}: {path.name} is TypeScript, which Workers do not run as it is",
                hint=BUILD_IT_FIRST,
            )
        modules = [_module(path.name, path)]
        entry = path.name
    elif path.is_dir():
        modules = [_module(file.relative_to(path).as_posix(), file) for file in _module_files(path)]
        if not modules:
            unbuilt = any(f.suffix in UNBUILT_SUFFIXES for f in path.rglob("*") if f.is_file())
            raise UsageError(
                f"{source}: the folder holds no module files"
                + (" (only TypeScript sources)" if unbuilt else ""),
                hint=BUILD_IT_FIRST
                if unbuilt
                else "a Worker's folder holds .js, .mjs or .py "
                "modules, with index.js (or worker.js, main.py) as its entry",
            )
        entry = _folder_entry(path, modules, source)
    else:
        raise UsageError(
            f"{source}: no such file or folder",
            hint="a worker's `path` is relative to the config file's folder",
        )
    if entry not in {m.name for m in modules}:
        raise UsageError(f"{source}: entry module {entry} is not a module file")
    main = next(m for m in modules if m.name == entry)
    if main.content_type not in ENTRY_TYPES:
        raise UsageError(f"{source}: {entry} is not a JavaScript or Python module")
    return WorkerCode(
        source=source,
        modules=tuple(modules),
        main_module=entry,
        compatibility_date=compatibility_date,
        compatibility_flags=tuple(compatibility_flags),
    )


def _module(name: str, file: Path) -> Module:
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read module {file}: {exc.strerror or exc}") from None
    return Module(name=name, content=content, content_type=content_type_for(name))


def _module_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for item in sorted(folder.iterdir()):
        if item.name.startswith("."):
            continue
        if item.is_dir():
            if item.name not in SKIPPED_DIRS:
                found.extend(_module_files(item))
        elif item.is_file() and item.name not in SKIPPED_FILES and item.suffix in CONTENT_TYPES:
            found.append(item)
    return found


def _folder_entry(folder: Path, modules: Sequence[Module], source: str) -> str:
    names = {m.name for m in modules}
    for candidate in ENTRY_CANDIDATES:
        if candidate in names:
            return candidate
    top = [m.name for m in modules if "/" not in m.name and m.content_type in ENTRY_TYPES]
    if len(top) == 1:
        return top[0]
    raise UsageError(
        f"{source}: cannot tell which module is the entry point "
        f"({', '.join(top) or 'no top-level JavaScript or Python module'})",
        hint=f"name it one of {', '.join(ENTRY_CANDIDATES)} or point `path` at the entry file",
    )


def load_worker_code(
    session: CloudflareSession, resolved: ResolvedConfig, alias: str
) -> WorkerCode:
    """The code to upload for a configured alias, from its ``script`` or its ``path``."""
    worker = resolved.config.workers[alias]
    config = resolved.config
    if worker.script is not None:
        try:
            code = download_account_worker(
                session,
                worker.script,
                default_compatibility_date=config.compatibility_date,
            )
            return dataclasses.replace(
                code, schedules=account_worker_schedules(session, worker.script)
            )
        except CloudflareAPIError as exc:
            if not is_not_found(exc, SCRIPT_NOT_FOUND):
                raise
            # The missing Worker is the copy's source, not something bind or deploy makes.
            raise CloudflareAPIError(
                f"the account Worker {worker.script} to copy does not exist",
                code=exc.code,
                status=exc.status,
                hint=f"check workers.{alias}.script in {resolved.path} "
                f"(for {resolved.env_name}), or deploy that Worker to the account first",
            ) from None
    assert worker.path is not None  # one of script/path is guaranteed by the config model
    path = Path(worker.path).expanduser()
    if not path.is_absolute():
        path = Path(resolved.path).resolve().parent / path
    return read_local_worker(
        path,
        compatibility_date=config.compatibility_date,
        compatibility_flags=config.compatibility_flags,
        shown_as=worker.path,
    )
