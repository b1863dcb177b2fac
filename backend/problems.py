"""RFC 9457 problem details: the one shape every error response takes.

Domain packages raise their own exceptions (``QueueError``, ``SiweError`` ...) and know nothing
about HTTP. Each router maps the exceptions it can surface to a status and a stable ``type`` slug
with :func:`register_problem`; :func:`install_problem_handlers` turns any registered exception,
any request-validation failure and any HTTPException into ``application/problem+json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from backend.observability import requestid

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://fairtix.dev/problems/"

log = logging.getLogger("fairtix.problems")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    type: str = Field(description="Stable URI naming the kind of problem; branch on this")
    title: str
    status: int
    detail: str = Field(description="What went wrong, for a person")
    instance: str | None = Field(
        default=None,
        description="This occurrence: urn:fairtix:request:<the request's X-Request-ID>; quote it "
        "to support, it finds the request in the logs",
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting that these statuses answer with problem+json."""
    return {
        status: {
            "model": ProblemDetails,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": ProblemDetails.model_json_schema()}},
            "description": "Problem details (RFC 9457)",
        }
        for status in statuses
    }


@dataclass(frozen=True)
class ProblemSpec:
    status: int
    slug: str
    title: str


_REGISTRY: dict[type[Exception], ProblemSpec] = {}


def register_problem(exc_type: type[Exception], status: int, slug: str, title: str) -> None:
    """Map a domain exception to an HTTP status and a stable problem type slug."""
    _REGISTRY[exc_type] = ProblemSpec(status, slug, title)


def spec_for(exc: Exception) -> ProblemSpec | None:
    # Walk the MRO so a subclass inherits its root's mapping unless it has its own.
    for klass in type(exc).__mro__:
        spec = _REGISTRY.get(klass)
        if spec is not None:
            return spec
    return None


def problem_details(exc: Exception) -> ProblemDetails | None:
    """The problem details a registered exception answers with, for a response that reports a
    problem inside a successful answer; None for an exception nothing registered."""
    if isinstance(exc, Problem):
        return ProblemDetails(
            type=TYPE_BASE + exc.slug, title=exc.title, status=exc.status, detail=exc.detail
        )
    spec = spec_for(exc)
    if spec is None:
        return None
    return ProblemDetails(
        type=TYPE_BASE + spec.slug, title=spec.title, status=spec.status, detail=str(exc)
    )


class Problem(Exception):
    """Raised by routers for an HTTP-level problem that has no domain exception behind it."""

    def __init__(self, status: int, slug: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int, slug: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def instance_of(scope: Scope) -> str:
    """The ``instance`` of a problem answering this request: the occurrence, named by the
    request's id (backend.observability), which its X-Request-ID header and every log line of
    the request carry too. Without the id's middleware (bare test apps), the path."""
    request_id = scope.get(requestid.SCOPE_KEY)
    return scope["path"] if request_id is None else f"urn:fairtix:request:{request_id}"


def _instance(request: Request) -> str:
    return instance_of(request.scope)


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, _instance(request), **exc.extra
    )


async def _handle_registered(request: Request, exc: Exception) -> JSONResponse:
    spec = spec_for(exc)
    if spec is None:  # pragma: no cover - handlers are only installed for registered types
        raise exc
    return problem_response(spec.status, spec.slug, spec.title, str(exc), _instance(request))


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return problem_response(
        422,
        "validation-failed",
        "Request is not valid",
        f"{where}: {first['msg']}" if where else str(first["msg"]),
        _instance(request),
        errors=errors,
    )


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {
        400: "malformed-body",
        404: "not-found",
        405: "method-not-allowed",
        401: "unauthorized",
    }.get(exc.status_code, "http-error")
    detail = str(exc.detail)
    if slug == "malformed-body":
        # Starlette's only 400: a body its JSON decoder couldn't even start on (not UTF-8).
        detail = "the request body could not be read as JSON text (UTF-8): " + detail
    response = problem_response(exc.status_code, slug, str(exc.detail), detail, _instance(request))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    response = problem_response(
        500,
        "internal-error",
        "Internal error",
        "The server hit an unexpected error; it has been logged.",
        _instance(request),
    )
    # This answer is sent from outside the request-id middleware, which adds the header to
    # every other one.
    request_id = request.scope.get(requestid.SCOPE_KEY)
    if request_id is not None:
        response.headers[requestid.HEADER] = request_id
    return response


def install_problem_handlers(app: FastAPI) -> None:
    """Register handlers for every exception type known so far and the framework's own errors."""
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    for exc_type in list(_REGISTRY):
        app.add_exception_handler(exc_type, _handle_registered)
    app.add_exception_handler(Exception, _handle_unexpected)
