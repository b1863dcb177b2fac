"""The web client: static files served by the API itself (``/`` and ``/web/...``).

The site is plain ES modules in ``static/`` (no build step); ``make`` copies its two libraries
(ethers, jsQR) from node_modules into ``static/vendor/``. Pages are routed in the browser after
``#``, so the site never claims a path an API route could want: it owns ``/`` and ``/web/``
only, and every API route, ``/docs``, ``/metrics`` and the probes keep theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from backend.chain.devnet import DEVNET_CHAIN_ID
from backend.config import Settings

STATIC_DIR = Path(__file__).parent / "static"

# The site's files are not content-hashed, so browsers revalidate them (ETag, 304) on every load:
# a deploy is seen at once. The vendored libraries change only with package-lock.json.
APP_CACHE = "no-cache"
VENDOR_CACHE = "public, max-age=86400"


def content_security_policy(settings: Settings) -> str:
    """No inline script or style anywhere: only the site's own files run. Stripe's Payment
    Element (only with a publishable key) needs its own script and frames."""
    stripe = " https://js.stripe.com" if settings.stripe_publishable_key else ""
    frames = "https://js.stripe.com https://hooks.stripe.com" if stripe else "'none'"
    return (
        "default-src 'self'; "
        f"script-src 'self'{stripe}; "
        "style-src 'self'; "
        "img-src 'self' data: blob:; "
        "media-src 'self' blob:; "
        f"connect-src 'self'{' https://api.stripe.com' if stripe else ''}; "
        f"frame-src {frames}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def security_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The scanner page reads the camera; nothing else is ever asked for.
        "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    }


class SiteFiles(StaticFiles):
    """StaticFiles with the site's cache and security headers."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(directory=STATIC_DIR)
        self._headers = security_headers(settings)

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = "/vendor/" in str(full_path)
        response.headers["Cache-Control"] = VENDOR_CACHE if vendored else APP_CACHE
        response.headers.update(self._headers)
        return response


def public_rpc_url(settings: Settings, chain_id: int) -> str:
    if settings.web_rpc_url:
        return settings.web_rpc_url
    if chain_id == DEVNET_CHAIN_ID and settings.env != "production":
        return settings.rpc_url
    return ""


def install_web(app: FastAPI, settings: Settings) -> None:
    """``GET /`` (the page), ``GET /web/config`` (what the page needs to know, all of it public)
    and ``/web/...`` (its files). Call after every API route is added."""
    headers = security_headers(settings)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", headers={**headers, "Cache-Control": APP_CACHE}
        )

    @app.get("/web/config", tags=["web"])
    def web_config(request: Request) -> JSONResponse:
        """What the web client needs to know about this deployment; every value is public."""
        runtime = request.app.state.runtime
        chain_id = int(runtime.chain.chain_id)
        body = {
            "chain_id": chain_id,
            "chain_name": "fairtix devnet" if chain_id == DEVNET_CHAIN_ID else f"chain {chain_id}",
            "rpc_url": public_rpc_url(settings, chain_id),
            "payments_provider": settings.payments_provider,
            "stripe_publishable_key": settings.stripe_publishable_key,
            "currency": settings.currency,
            "wei_per_cent": str(settings.wei_per_cent),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    app.mount("/web", SiteFiles(settings), name="web")
