"""The site as the API serves it: `/` and `/web/...` only, every API route, /docs and /metrics
still answered as before, cache and security headers, and no file outside static/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.config import Settings
from backend.web import STATIC_DIR, content_security_policy

pytestmark = pytest.mark.db


def test_the_page_is_served_at_the_root_with_a_strict_csp(client: TestClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/web/app.js">' in answer.text
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_no_inline_script_or_style_in_the_site() -> None:
    # The CSP would block them in a browser; this says which file broke it, before a browser does.
    for path in STATIC_DIR.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert "<style" not in text and " style=" not in text, path.name
    for path in STATIC_DIR.glob("*.js"):
        assert "innerHTML" not in path.read_text(), f"{path.name}: build DOM nodes, not HTML"


def test_site_files_revalidate_and_vendored_libraries_are_cached(client: TestClient) -> None:
    app_js = client.get("/web/app.js")
    assert app_js.status_code == 200
    assert "javascript" in app_js.headers["content-type"]
    assert app_js.headers["cache-control"] == "no-cache"
    assert app_js.headers.get("etag")
    again = client.get("/web/app.js", headers={"If-None-Match": app_js.headers["etag"]})
    assert again.status_code == 304
    if (STATIC_DIR / "vendor" / "ethers.min.js").exists():  # copied by make
        ethers = client.get("/web/vendor/ethers.min.js")
        assert ethers.status_code == 200
        assert ethers.headers["cache-control"] == "public, max-age=86400"


def test_api_routes_docs_and_metrics_still_win(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "fairtix"
    assert client.get("/metrics").status_code in (200, 401, 403)
    assert client.get("/events").status_code == 200
    missing = client.get("/no-such-route")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_nothing_outside_static_is_served(client: TestClient) -> None:
    assert client.get("/web/../__init__.py").status_code == 404
    assert client.get("/web/%2e%2e/__init__.py").status_code == 404
    assert client.get("/web/no-such-file.js").status_code == 404
    assert Path(STATIC_DIR, "..", "__init__.py").exists()


def test_web_config_is_public_and_holds_no_secret(client: TestClient) -> None:
    answer = client.get("/web/config")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {
        "chain_id",
        "chain_name",
        "rpc_url",
        "payments_provider",
        "stripe_publishable_key",
        "currency",
        "wei_per_cent",
    }
    assert body["payments_provider"] == "sandbox"
    assert body["stripe_publishable_key"] == ""
    # eth-tester is not the devnet: no RPC URL is offered to wallets.
    assert body["rpc_url"] == ""
    assert "secret" not in answer.text.lower().replace("stripe_publishable_key", "")


def test_every_site_module_parses(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (Node 20, as for the compiler and anvil)"
    for path in sorted(STATIC_DIR.glob("*.js")):
        # As .mjs: Node 20 checks a .js file as CommonJS and lets an ES module's errors pass.
        copy = tmp_path / f"{path.stem}.mjs"
        copy.write_text(path.read_text())
        result = subprocess.run([node, "--check", str(copy)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_stripe_is_allowed_only_with_a_publishable_key() -> None:
    without = content_security_policy(Settings(env="test", secret_key="x" * 32))  # type: ignore[arg-type]
    assert "stripe" not in without and "frame-src 'none'" in without
    with_key = content_security_policy(
        Settings(env="test", secret_key="x" * 32, stripe_publishable_key="pk_test_123")  # type: ignore[arg-type]
    )
    assert "script-src 'self' https://js.stripe.com;" in with_key
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in with_key
    assert "unsafe-inline" not in with_key
