"""bin/supervise, which bin/run starts the worker under: a command that dies is started again, a
few times in a row, each time said; then it gives up, says so and exits with the command's status;
SIGTERM stops the command with it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUPERVISE = str(ROOT / "bin" / "supervise")


def test_a_dying_command_is_restarted_a_few_times_then_it_gives_up_and_says_so(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "SUPERVISE_PAUSE": "0", "SUPERVISE_RESTARTS": "3"}
    done = subprocess.run(
        [SUPERVISE, "The worker", "sh", "-c", f"echo run >> {runs}; exit 7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 7
    assert runs.read_text().count("run") == 4  # the first run and three restarts
    lines = done.stderr.splitlines()
    assert "The worker exited with status 7; restarting it in 0s (restart 1 of 3)." in lines
    assert lines[-1] == "The worker exited with status 7 and was restarted 3 times in a row; giving up."


def test_sigterm_stops_the_command_and_the_supervisor(tmp_path):
    pid_file = tmp_path / "pid"
    supervisor = subprocess.Popen(
        [SUPERVISE, "sleeper", "sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"],
        env={**os.environ, "SUPERVISE_PAUSE": "0"},
    )
    try:
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        child = int(pid_file.read_text())
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
        for _ in range(200):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the supervised command outlived its supervisor")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
