"""A listing's two requests, answered before the framework's routing.

Listing a ticket is two requests: ``POST /listings/sell-order`` (the typed data to sign) and
``POST /listings`` (the signed order). When a show's holders list at once, what the framework
adds to each (route matching over every route of the API, dependency solving, the body's
validation through the route's signature, the hop to the request pool and back) cost as much
CPU as the listing's own work, and the work itself waited on the database and the chain in a
thread. This pure ASGI layer takes both on PostgreSQL with Redis and a plain-HTTP node: it
validates the body with the route's own model, finds the wallet in the session copy on the
non-blocking Redis lane, counts it against the wallet's rate limit, and answers through
backend/resale/quick.py: the service's own checks, every round trip awaited on the loop.

Everything else goes on to the ordinary route with the body as it came, which documents the
requests in the OpenAPI and answers them as before, problem+json included: SQLite, a body or a
session the lane can't vouch for, a wallet over its rate limit, a listing quick.py leaves to the
route, and any refusal (not the holder, price above the cap ...). Nothing was written then (the
lane's transaction rolled back), so the route decides again and its answer is the one the
client sees.

It sits inside the request guard, so the client rate limits and the body checks hold here too.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.auth.errors import AuthError
from backend.auth.session_cache import wallet_of
from backend.db.base import utcnow
from backend.guard.errors import RateLimited
from backend.guard.limits import WALLET_COUNTED, RateLimits
from backend.lanes.asgi import JSON_HEADERS, json_bearer, read_body, replay
from backend.observability.middleware import ROUTE_KEY
from backend.queue.redis_lane import LaneUnavailable
from backend.resale.quick import QuickListings
from backend.resale.router import draft_out, listing_out, terms_of
from backend.resale.schemas import ListingCreate, SellOrderRequest
from backend.runtime import Runtime

log = logging.getLogger("fairtix.resale.lane")

DRAFT_PATH = "/listings/sell-order"
LISTING_PATH = "/listings"
# The paths are the routes' own (no path parameters): metrics count the answers under them.
_MODELS: dict[str, type[BaseModel]] = {DRAFT_PATH: SellOrderRequest, LISTING_PATH: ListingCreate}


class ListingFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path not in _MODELS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        runtime: Runtime | None = getattr(state, "runtime", None)
        quick: QuickListings | None = getattr(state, "quick_listings", None)
        credential = json_bearer(scope)
        if runtime is None or quick is None or credential is None:
            await self.app(scope, receive, send)
            return
        body, complete = await read_body(receive)
        payload = await self._answer(scope, runtime, quick, credential, body) if complete else None
        if payload is None:
            await self.app(scope, replay(body, complete, receive), send)
            return
        scope[ROUTE_KEY] = path
        status = 201 if path == LISTING_PATH else 200
        headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(
        self, scope: Scope, runtime: Runtime, quick: QuickListings, credential: str, body: bytes
    ) -> bytes | None:
        """The answer's body, or None to leave the request to the route."""
        try:
            request: Any = _MODELS[scope["path"]].model_validate_json(body)
        except ValidationError:
            return None  # the route answers 422 with the details
        try:
            wallet = wallet_of(await runtime.queue.session_cache.lookup_on_lane(credential))
        except (AuthError, LaneUnavailable):
            return None  # the route refuses the session, or asks the database
        if wallet is None:
            return None  # only the database knows the session: the route asks it
        limits: RateLimits = scope["app"].state.rate_limits
        try:
            limits.check_wallet(wallet)
        except RateLimited:
            return None  # the route answers 429 with its Retry-After (counted once more)
        scope[WALLET_COUNTED] = wallet
        now, wei_per_cent = utcnow(), runtime.settings.wei_per_cent
        try:
            if isinstance(request, ListingCreate):
                view = await quick.list(
                    wallet,
                    terms_of(request),
                    request.nonce,
                    request.signature,
                    now,
                    wei_per_cent,
                )
                out: BaseModel = listing_out(view, wei_per_cent, now)
            else:
                draft = await quick.draft(wallet, terms_of(request), now, wei_per_cent)
                out = draft_out(draft, wei_per_cent, now)
        except Exception as exc:
            # Every refusal, and whatever quick.py leaves to it, is the route's to answer.
            # Nothing was written: the transaction rolled back on the way out (a COMMIT whose
            # answer was lost is the one exception: the route then finds the listing on the
            # market and replaces it).
            log.debug("listing left to the route", extra={"reason": type(exc).__name__})
            return None
        return out.model_dump_json().encode()
