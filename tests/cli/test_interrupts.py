"""One way to stop: Ctrl-C at a prompt or mid-run exits 130 and says how far it got."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import code24ctl.ops.bind as bind_module
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.staging import ALIASES, NAMESPACE, STAGING_SCRIPTS, writes
from tests.support.terminal import run_on_terminal


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
        uploads.append(args[2])

    monkeypatch.setattr(bind_module, "upload_worker", upload)

    result = run_cli("bind", "--env", "staging", "--concurrency", "1", env=cf_env)

    assert result.exit_code == 130
    assert result.stdout == ""
    # Without a terminal, a line per worker read and uploaded comes first.
    lines = result.stderr.splitlines()
    assert lines[-4:] == [
        "error: interrupted after 2 of 5 workers; rerun code24ctl bind --env staging to "
        "finish, nothing is half-written",
        "changes already made:",
        *[f"  worker {alias}: created (from script {STAGING_SCRIPTS[alias]})" for alias in uploads],
    ]
    assert [line.split(":")[0] for line in lines[:-4]] == [
        *["bind (reading)"] * 5,
        *["bind"] * 2,
    ]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(uploads)


def test_sigterm_mid_bind_gives_ctrl_cs_summary_with_exit_143(
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
        if len(uploads) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # CI cancelling the job
            signal.sigtimedwait([], 0)
        real_upload(*args, **kwargs)
        uploads.append(args[2])

    monkeypatch.setattr(bind_module, "upload_worker", upload)

    result = run_cli("bind", "--env", "staging", "--concurrency", "1", env=cf_env)

    assert result.exit_code == 143
    # The same summary as Ctrl-C's: how far it got, then what it wrote.
    assert result.stderr.splitlines()[-3:] == [
        "error: terminated by SIGTERM after 1 of 5 workers; rerun code24ctl bind --env "
        "staging to finish, nothing is half-written",
        "changes already made:",
        f"  worker {uploads[0]}: created (from script {STAGING_SCRIPTS[uploads[0]]})",
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

    def respond(process: subprocess.Popen[bytes], terminal: int) -> None:
        if answer is None:
            process.send_signal(signal.SIGINT)
        else:
            os.write(terminal, answer)

    return run_on_terminal(args, REPO_CONFIG, env=env, stdin_on_terminal=True, on_prompt=respond)


def test_sigterm_to_a_real_bind_process_reports_every_upload_and_the_rerun_converges(
    cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Any
) -> None:
    """CI cancelling a job: a real process, a real signal, uploads in flight on two threads."""
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    cf_state.latency(60)  # long enough to be mid-run when the signal comes
    command = [
        sys.executable,
        "-m",
        "code24ctl",
        "bind",
        "--env",
        "staging",
        "-c",
        str(REPO_CONFIG),
    ]
    process = subprocess.Popen(
        [*command, "--concurrency", "2"],
        env={**os.environ, **cf_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not cf_state.requests(method="PUT") and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    stderr = err.decode()

    assert process.returncode == 143, stderr
    assert out == b""
    assert "error: terminated by SIGTERM" in stderr
    said = stderr.split("changes already made:\n")[1].splitlines()
    written = cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE)
    # Every upload that landed is reported (those in flight at the signal included).
    assert sorted(line.split()[1].rstrip(":") for line in said) == written
    assert written

    cf_state.latency(0)
    rerun = subprocess.run(command, env={**os.environ, **cf_env}, capture_output=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(ALIASES)
    again = subprocess.run(
        [*command, "--json"], env={**os.environ, **cf_env}, capture_output=True, timeout=60
    )
    assert again.returncode == 0
    assert {w["action"] for w in json.loads(again.stdout)["workers"]} == {"unchanged"}
