"""``doctor`` for a local environment (``serve``): no Cloudflare API, so the checks are Node.js
and miniflare (for ``serve --runtime workerd``), what answers each alias, and a probe of the
running serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from code24ctl.config import ResolvedConfig
from code24ctl.errors import UsageError
from code24ctl.ops.doctor import Doctor
from code24ctl.ops.doctor_report import CheckName, DoctorReport

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


def run_local_doctor(resolved: ResolvedConfig, *, base_url: str | None = None) -> DoctorReport:
    """The checks of a local environment: Node.js 20+ and the pinned miniflare (which only
    ``serve --runtime workerd`` needs: missing, they warn), what answers each alias in that
    runtime, then a probe of the running serve. Never raises for a failed check."""
    from code24ctl.serve.workerd import node as runtime_node
    from code24ctl.serve.workerd.plan import build_plan

    # No Cloudflare session: none of the checks below calls the API.
    doctor = Doctor(cast("CloudflareSession", None), resolved, base_url)
    python_only = "`serve --runtime workerd` needs it (the Python runtime does not)"
    try:
        path, version = runtime_node.find_node()
    except UsageError as exc:
        doctor.add(CheckName.NODE, "warn", f"{exc.message}; {python_only}", exc.hint)
    else:
        doctor.add(CheckName.NODE, "ok", f"{path} {version}")
    try:
        folder = runtime_node.miniflare_dir()
    except UsageError as exc:
        doctor.add(CheckName.MINIFLARE, "fail", exc.message, exc.hint)
    else:
        if folder is None:
            doctor.add(
                CheckName.MINIFLARE,
                "warn",
                f"miniflare {runtime_node.MINIFLARE_VERSION} is not installed yet (the first "
                "`serve --runtime workerd` installs it)",
                runtime_node.install_command(),
            )
        else:
            doctor.add(
                CheckName.MINIFLARE, "ok", f"miniflare {runtime_node.MINIFLARE_VERSION} in {folder}"
            )
    try:
        plan = build_plan(resolved)
    except UsageError as exc:
        doctor.add(CheckName.SOURCES, "fail", exc.message, exc.hint)
    else:
        kinds = [f"{alias}: {source.shown}" for alias, source in sorted(plan.sources.items())]
        missing = [
            f"{alias} runs without {'; '.join(source.missing)}"
            for alias, source in sorted(plan.sources.items())
            if source.missing
        ]
        if missing:
            doctor.add(CheckName.SOURCES, "warn", "; ".join(missing))
        else:
            doctor.add(CheckName.SOURCES, "ok", "; ".join(kinds))
    doctor.probe()
    return DoctorReport.of(resolved.env_name, doctor.checks)
