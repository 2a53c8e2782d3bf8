"""Small process and port helpers for the services the local stack starts."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class PortInUse(RuntimeError):
    def __init__(self, port: int, what: str, option: str) -> None:
        super().__init__(
            f"port {port} ({what}) is already in use on 127.0.0.1. Stop whatever listens there, "
            f"or choose another port with {option}."
        )
        self.port = port


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same option the JVM sets, so a socket lingering in TIME_WAIT does not count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int | None, marker: str) -> bool:
    """True if `pid` runs and its command line contains `marker` (guards against pid reuse)."""
    if not pid:
        return False
    line = cmdline(pid)
    return bool(line) and marker in line and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def spawn(
    cmd: list[str], cwd: Path, log_file: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            # Own session: Ctrl-C in the terminal that ran `tipoff stack up` must not stop it.
            start_new_session=True,
        )
    return proc


def stop(pid: int, marker: str, grace_s: float = 30.0) -> bool:
    """SIGTERM, then SIGKILL after `grace_s`. Returns False if it was not running."""
    if not alive(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    while alive(pid, marker):
        time.sleep(0.1)
    return True


def wait_until(
    check: Callable[[], bool], timeout_s: float, still_running: Callable[[], bool]
) -> bool:
    """Poll `check` until it holds; give up early if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        if not still_running():
            return False
        time.sleep(0.5)
    return check()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
