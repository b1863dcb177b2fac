"""Wiring of the request guard into the app, and what it adds to the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from backend.config import Settings
from backend.guard.errors import GuardError
from backend.guard.limits import UNLIMITED_PATHS, RateLimits
from backend.guard.middleware import RequestGuard, guard_problem
from backend.problems import PROBLEM_MEDIA_TYPE, ProblemDetails, instance_of

_PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
_BODY_ANSWERS: dict[str, dict[str, Any]] = {
    "400": {
        "description": "The body could not be read: not UTF-8 JSON, nested too deep, or a NUL "
        "character in text (problem types malformed-body, body-refused)",
        "content": _PROBLEM,
    },
    "413": {
        "description": "The body is larger than this route accepts (problem type body-too-large)",
        "content": _PROBLEM,
    },
}
_RATE_LIMITED: dict[str, Any] = {
    "description": "A rate limit of the client address or the wallet is reached (problem type "
    "rate-limited); retry after the seconds in Retry-After",
    "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    "content": _PROBLEM,
}
_NUL_IN_URL: dict[str, Any] = {
    "description": "A NUL character in the path or query (problem type body-refused)",
    "content": _PROBLEM,
}


def install_guard(app: FastAPI, settings: Settings) -> RateLimits:
    """Put the request guard in front of every route and document its answers."""
    limits = RateLimits(settings)
    app.state.rate_limits = limits
    app.add_middleware(RequestGuard, limits=limits)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GuardError)
        return guard_problem(exc, instance_of(request.scope))

    # Raised by the routes that know the wallet (its rate limit, its streams).
    app.add_exception_handler(GuardError, refused)
    _document(app)
    return limits


def _document(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ProblemDetails", ProblemDetails.model_json_schema()
        )
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                answers = operation.setdefault("responses", {})
                answers.setdefault("400", _NUL_IN_URL)
                if "requestBody" in operation:
                    for status, answer in _BODY_ANSWERS.items():
                        answers[status] = answer | {
                            "description": _merged(answers.get(status), answer)
                        }
                if path not in UNLIMITED_PATHS:
                    answers.setdefault("429", _RATE_LIMITED)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _merged(existing: dict[str, Any] | None, added: dict[str, Any]) -> str:
    """One description for a status two sources document (a route's own 400 and the guard's)."""
    if existing is None or existing.get("description") == added["description"]:
        return str(added["description"])
    return f"{existing['description']}; or: {added['description']}"
