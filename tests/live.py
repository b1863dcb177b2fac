"""Real API processes for the tests that need one: uvicorn on a free port, in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_env(database_url: str, var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a test API process: the test database, an in-process eth-tester
    chain, its own var/ and quiet logs; ``settings`` are more FAIRTIX_* variables, by name
    without the prefix (``ADMIN_ADDRESSES="0x..."``)."""
    return {
        **os.environ,
        "FAIRTIX_ENV": "test",
        "FAIRTIX_DATABASE_URL": database_url,
        "FAIRTIX_CHAIN_BACKEND": "eth-tester",
        "FAIRTIX_SECRET_KEY": "live-test-secret",
        "FAIRTIX_VAR_DIR": str(var_dir),
        "FAIRTIX_LOG_LEVEL": "WARNING",
        **{f"FAIRTIX_{name}": value for name, value in settings.items()},
    }


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``uvicorn backend.app:create_app`` with ``env``; its output goes to ``log``."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "backend.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        # uvicorn closes a connection idle for 5 s; a pooled client connection reused at that
        # moment is reset (ECONNRESET on a status poll, once, on a slow machine). No test here
        # is about idle connections, so none goes idle long enough to race.
        "--timeout-keep-alive",
        "120",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"API process exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"API at {base} did not become healthy: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
