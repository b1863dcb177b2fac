"""The local development chain: anvil from the npm package ``@foundry-rs/anvil``.

Accounts come from the standard public test mnemonic shared by anvil and Hardhat. Their keys are
published everywhere; anything sent to them on a real chain is taken within seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.signers.local import LocalAccount

from backend.chain.artifacts import REPO_ROOT
from backend.chain.errors import DevnetError

DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_CHAIN_ID = 31337
DEFAULT_PORT = 8545
_LOG_TAIL_LINES = 20


def devnet_account(index: int = 0) -> LocalAccount:
    """Account ``index`` of the devnet mnemonic (path m/44'/60'/0'/0/index), as anvil funds it."""
    # eth-account gates mnemonic derivation behind this flag; these keys are public test keys.
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(
        DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


def anvil_binary(root: Path = REPO_ROOT) -> Path:
    """``<root>/node_modules/.bin/anvil``; raises ``DevnetError`` telling how to install it."""
    binary = root / "node_modules" / ".bin" / "anvil"
    if not binary.exists():
        raise DevnetError(
            f"anvil not found at {binary}; run `npm ci` in {root} to install @foundry-rs/anvil"
        )
    return binary


def _native_anvil(root: Path) -> Path | None:
    """The platform binary the npm wrapper would launch, if exactly one is installed.

    The wrapper (``.bin/anvil``, a Node script) forwards SIGTERM to anvil and then exits at once,
    without waiting for anvil to dump ``--state``. Running the binary directly makes us its
    parent, so waiting for it means waiting until the state is on disk.
    """
    found = [
        p
        for p in sorted((root / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil*"))
        if p.is_file() and os.access(p, os.X_OK)
    ]
    return found[0] if len(found) == 1 else None


def is_listening(url: str, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at the host and port of ``url``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _rpc(url: str, method: str, timeout: float = 2.0) -> Any:
    # Plain urllib instead of web3: a probe must fail fast, without web3's retry backoff.
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["result"]


def _answers_as_devnet(url: str) -> bool:
    try:
        chain_id = int(_rpc(url, "eth_chainId"), 16)
        client = str(_rpc(url, "web3_clientVersion"))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return chain_id == DEVNET_CHAIN_ID and client.lower().startswith("anvil")


def devnet_address(rpc_url: str) -> tuple[str, int]:
    """Where ``fairtix run --devnet`` starts anvil: the host and port FAIRTIX_RPC_URL names, so
    two checkouts can each run their own devnet (e.g. FAIRTIX_RPC_URL=http://127.0.0.1:8546).
    Only a loopback URL can be a devnet this machine starts; anything else is a ValueError."""
    parts = urlsplit(rpc_url)
    host = parts.hostname or ""
    if parts.scheme != "http" or host not in ("127.0.0.1", "localhost"):
        raise ValueError(
            f"--devnet starts anvil on this machine, but FAIRTIX_RPC_URL is {rpc_url}: use "
            "http://127.0.0.1:<port>, or drop --devnet to use that node"
        )
    return "127.0.0.1", parts.port or DEFAULT_PORT


class Devnet:
    """Runs anvil on ``host:port`` for the lifetime of the object (or a ``with`` block).

    With ``state_file`` the chain survives restarts: anvil loads the file on start if it exists
    and writes it on a clean exit, which is why ``stop`` sends SIGTERM and waits rather than
    killing. If an anvil devnet (chain id 31337) is already listening on the port it is reused
    and left running on ``stop``; anything else on the port is an error.
    """

    def __init__(
        self,
        *,
        root: Path = REPO_ROOT,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        state_file: Path | None = None,
        log_file: Path | None = None,
        startup_timeout: float = 30,
        stop_timeout: float = 15,
    ) -> None:
        self.root = root
        self.host = host
        self.port = port
        self.state_file = state_file
        self.log_file = log_file
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.reused = False
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The anvil command line this devnet runs."""
        wrapper = anvil_binary(self.root)
        cmd = [
            str(_native_anvil(self.root) or wrapper),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(DEVNET_CHAIN_ID),
            "--mnemonic", DEVNET_MNEMONIC,
        ]  # fmt: skip
        if self.state_file is not None:
            cmd += ["--state", str(self.state_file)]
        return cmd

    def start(self) -> Devnet:
        if self._process is not None or self.reused:
            return self
        if is_listening(self.rpc_url):
            if _answers_as_devnet(self.rpc_url):
                self.reused = True
                return self
            raise DevnetError(
                f"port {self.port} on {self.host} is taken by something that is not an anvil "
                f"devnet with chain id {DEVNET_CHAIN_ID}; stop it or pick another port"
            )
        command = self.command()
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self._open_log()
        assert self._log is not None
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own process group: node's bin wrapper forwards SIGTERM to the native anvil, but if
            # we ever have to SIGKILL, the whole group must go so no orphaned anvil keeps the port.
            start_new_session=True,
        )
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        self.reused = False
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # anvil dumps --state on SIGTERM
                deadline = time.monotonic() + self.stop_timeout
                try:
                    process.wait(timeout=self.stop_timeout)
                    # Through the npm wrapper, anvil may still be writing its state after the
                    # wrapper is gone; it closes its port last.
                    while is_listening(self.rpc_url) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    if is_listening(self.rpc_url):
                        _kill_group(process.pid)
                except subprocess.TimeoutExpired:
                    _kill_group(process.pid)
                    process.wait()
        finally:
            self._close_log(keep=self.log_file is not None)

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _open_log(self) -> None:
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_path = self.log_file
            self._log = self.log_file.open("ab")
        else:
            fd, name = tempfile.mkstemp(prefix="anvil-", suffix=".log")
            self._log_path = Path(name)
            self._log = os.fdopen(fd, "wb")

    def _close_log(self, keep: bool) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if not keep and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"anvil exited with code {self._process.returncode} while starting")
            try:
                if int(_rpc(self.rpc_url, "eth_chainId", timeout=1), 16) == DEVNET_CHAIN_ID:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self._fail(f"anvil did not answer eth_chainId on {self.rpc_url} within "
                   f"{self.startup_timeout:g}s")  # fmt: skip

    def _fail(self, message: str) -> None:
        tail = self.log_tail()
        if self._process is not None:
            _kill_group(self._process.pid)
            self._process.wait()
        self._process = None
        # Keep the log file: it is what explains the failure.
        if self._log is not None:
            self._log.close()
            self._log = None
        raise DevnetError(f"{message}\n--- last lines of {self._log_path} ---\n{tail}")


def _kill_group(pgid: int) -> None:
    """SIGKILLs the process group we started anvil in (its id is our child's pid)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
