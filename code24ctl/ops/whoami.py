"""``whoami``: the first two checks of the doctor (the token, the account it reaches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from code24ctl.config import ResolvedConfig
from code24ctl.ops.doctor import Doctor
from code24ctl.ops.doctor_report import CheckName, DoctorReport

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


def run_whoami(session: CloudflareSession, resolved: ResolvedConfig) -> DoctorReport:
    """``whoami``: the token (user or account-owned, active) and the account it reaches; the
    first two checks of the doctor, never raising for a failed one."""
    resolved.require_cloudflare()
    doctor = Doctor(session, resolved, None)
    if doctor.token():
        doctor.account()
    else:
        doctor.add(CheckName.ACCOUNT, "skip", "needs a valid token")
    return DoctorReport.of(resolved.env_name, doctor.checks)
