"""One way to stop: Ctrl-C at a prompt or mid-run exits 130 and says how far it got."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import code24ctl.ops.bind as bind_module
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, REPO_ROOT, RunCli
from tests.support.staging import NAMESPACE, writes


def test_ctrl_c_mid_bind_says_how_far_it_got(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    real_upload = bind_module.upload_worker
    uploads: list[str] = []

    def upload(*args: Any, **kwargs: Any) -> None:
        if len(uploads) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        real_upload(*args, **kwargs)
        uploads.append(args[3])

    monkeypatch.setattr(bind_module, "upload_worker", upload)

    result = run_cli("bind", "--env", "staging", "--concurrency", "1", env=cf_env)

    assert result.exit_code == 130
    assert result.stdout == ""
    # Without a terminal, a line per worker read and uploaded comes first.
    assert result.stderr.splitlines()[-1] == (
        "error: interrupted after 2 of 5 workers; rerun code24ctl bind --env staging to "
        "finish, nothing is half-written"
    )
    assert [line.split(":")[0] for line in result.stderr.splitlines()[:-1]] == [
        *["bind (reading)"] * 5,
        *["bind"] * 2,
    ]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(uploads)


def test_ctrl_c_at_the_apply_prompt_exits_130_and_writes_nothing(
    cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    status, seen = _interrupt_at_prompt(["apply", "--env", "staging"], cf_env)

    assert status == 130, seen
    assert "Apply these changes to staging? [y/N]" in seen
    assert "error: interrupted at the prompt: nothing was changed in staging" in seen
    assert "Aborted" not in seen
    assert writes(cf_state) == []


def test_answering_no_keeps_its_documented_exit_2(
    cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    status, seen = _interrupt_at_prompt(["apply", "--env", "staging"], cf_env, answer=b"n\n")

    assert status == 2, seen
    assert "error: nothing was changed in staging" in seen
    assert writes(cf_state) == []


def _interrupt_at_prompt(
    args: list[str], env: dict[str, str], answer: bytes | None = None
) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal; at the ``[y/N]`` prompt answer, or press Ctrl-C."""
    leader, follower = pty.openpty()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CODE24_", "CLOUDFLARE_"))},
        **env,
        "CODE24_CONFIG": str(REPO_CONFIG),
        "TERM": "xterm",
        "COLUMNS": "200",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "code24ctl", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment,
        cwd=REPO_ROOT,
    )
    os.close(follower)
    seen = b""
    asked = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            seen += chunk
            if not asked and b"[y/N]" in seen:
                asked = True
                if answer is None:
                    process.send_signal(signal.SIGINT)
                else:
                    os.write(leader, answer)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(10), seen.decode("utf-8", errors="replace")
