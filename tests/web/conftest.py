"""The web client's browser tests: a real API (uvicorn, SQLite, its in-process worker) on a real
anvil devnet, and Debian's headless chromium driven by Playwright. Each browser context gets a
test wallet (eip6963_wallet.js) announced over EIP-6963 that forwards JSON-RPC to anvil, where the
context's unlocked anvil account signs for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.chain.devnet import Devnet, devnet_account
from tests.live import free_port, stop, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WALLET_JS = Path(__file__).with_name("eip6963_wallet.js")
SCREENSHOTS = ROOT / "var" / "screenshots"
# What the scanner's camera sees: chromium's fake capture device plays this file (written by the
# door test when it holds a QR up to the camera).
FAKE_CAMERA = ROOT / "var" / "web-fake-camera.y4m"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

    # make test runs these beside the PostgreSQL pass on a busy machine: give each step room.
    expect.set_options(timeout=20_000)
except ImportError:  # pragma: no cover - the dev extra always has it
    sync_playwright = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = []
    if sync_playwright is None:
        missing.append("playwright")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (make system-deps)")
    if not AXE.exists():
        missing.append("node_modules/axe-core (make install)")
    if not missing:
        return
    if os.environ.get("CI") == "true" and any(i.get_closest_marker("browser") for i in items):
        raise pytest.UsageError(f"browser tests need {', '.join(missing)}")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=f"missing {', '.join(missing)}"))


@dataclass
class Stack:
    base: str
    rpc_url: str
    log: Path
    problems: list[str] = field(default_factory=list)  # axe findings and page errors

    def rpc(self, method: str, params: list[Any]) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(
            self.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=30,
        ).json()
        return answer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("web")
    with Devnet(port=free_port(), log_file=tmp / "anvil.log") as devnet:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "FAIRTIX_ENV": "development",
            "FAIRTIX_HOST": "127.0.0.1",
            "FAIRTIX_PORT": str(port),
            "FAIRTIX_DATABASE_URL": f"sqlite:///{tmp / 'web.db'}",
            "FAIRTIX_RPC_URL": devnet.rpc_url,
            "FAIRTIX_DEPLOYMENTS_DIR": str(tmp / "deployments"),
            "FAIRTIX_VAR_DIR": str(tmp / "var"),
            "FAIRTIX_SECRET_KEY": "web-test-secret-key-0123456789abcdef",
            "FAIRTIX_ADMIN_ADDRESSES": devnet_account(1).address,
            "FAIRTIX_LOG_LEVEL": "WARNING",
            "FAIRTIX_WORKER_POLL_SECONDS": "0.2",
        }
        env.pop("FAIRTIX_TEST_DATABASE_URL", None)
        log = tmp / "api.log"
        command = [sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            wait_healthy(base, process, log)
            yield Stack(base=base, rpc_url=devnet.rpc_url, log=log)
        finally:
            stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={FAKE_CAMERA}",
            ],
        )
        yield chromium
        chromium.close()


def hold_up_to_camera(png: bytes, path: Path = FAKE_CAMERA) -> None:
    """Writes ``png`` (a QR code) centred on a white 640x480 frame, as the y4m video chromium's
    fake camera plays (grey: the Y plane is the picture, U and V neutral)."""
    import io

    from PIL import Image

    width, height = 640, 480
    code = Image.open(io.BytesIO(png)).convert("L")
    side = min(width, height) - 80
    code = code.resize((side, side), Image.Resampling.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(code, ((width - side) // 2, (height - side) // 2))
    chroma = bytes([128]) * (width // 2 * height // 2)
    body = b"FRAME\n" + frame.tobytes() + chroma + chroma
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + body * 5)


class Person:
    """One browser context: a fan's phone, the organizer's laptop, a scanner device."""

    def __init__(self, browser: Browser, stack: Stack, name: str, account: int | None) -> None:
        self.stack = stack
        self.name = name
        self.context: BrowserContext = browser.new_context(
            viewport=DESKTOP, timezone_id="UTC", locale="en-GB"
        )
        self.address = devnet_account(account).address if account is not None else None
        if self.address is not None:
            self.context.expose_binding("__fairtixWallet", self._forward)
            self.context.add_init_script(WALLET_JS.read_text().replace("__ADDRESS__", self.address))
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("pageerror", lambda error: stack.problems.append(f"{name}: {error}"))

    def _forward(self, _source: Any, method: str, params: list[Any]) -> dict[str, Any]:
        return self.stack.rpc(method, params)

    def go(self, route: str) -> None:
        url = f"{self.stack.base}/#{route}"
        # The same URL is no navigation and no hashchange: load the page afresh instead.
        if self.page.url == url:
            self.page.reload()
        else:
            self.page.goto(url)

    def shoot(self, name: str) -> None:
        """Screenshots at phone and desktop width (var/screenshots/, not committed)."""
        for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        self.page.set_viewport_size(DESKTOP)

    def axe(self, page_name: str) -> None:
        """axe-core's scan of the page as it stands; serious and critical findings are kept."""
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text())
        result = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"
        )
        for violation in result:
            self.stack.problems.append(f"axe {page_name}: {json.dumps(violation)}")

    def close(self) -> None:
        self.context.close()
