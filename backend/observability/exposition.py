"""Who may read the metrics, and the text they get.

- ``FAIRTIX_METRICS_TOKEN`` set: ``Authorization: Bearer <token>`` is required, from anywhere
  (401 without it).
- Not set, outside production: only clients on loopback get an answer (403 otherwise), for a
  Prometheus on the same host in development.
- Not set, in production: off (404). Behind a reverse proxy on the same host every request comes
  from loopback, so "loopback only" would open the metrics to whoever reaches the proxy.

The worker's own endpoint (``FAIRTIX_WORKER_METRICS_PORT``) follows the same rule.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from backend.auth.service import bearer_credential
from backend.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Access:
    """The decision, as a status: 200 to answer, else the refusal."""

    def __init__(self, settings: Settings) -> None:
        token = settings.metrics_token
        self._token = None if token is None else token.get_secret_value().encode()
        self.enabled = self._token is not None or settings.env != "production"

    def check(self, authorization: str | None, client_host: str | None) -> int:
        if not self.enabled:
            return 404
        if self._token is not None:
            given = bearer_credential(authorization or "")
            if given is not None and hmac.compare_digest(given.strip().encode(), self._token):
                return 200
            return 401
        return 200 if _is_loopback(client_host) else 403


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Together:
    """Several collectors read as one registry."""

    def __init__(self, parts: Iterable[Any]) -> None:
        self._parts = list(parts)

    def collect(self) -> Iterator[Any]:
        for part in self._parts:
            yield from part.collect()


def process_registry() -> Any:
    """This process's metrics, or with PROMETHEUS_MULTIPROC_DIR set, every process's summed."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(_Together([process_registry(), *extra])), CONTENT_TYPE_LATEST


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(access: Access) -> WsgiApp:
    """The worker's endpoint: any path answers the metrics, behind the same access rule."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status = access.check(environ.get("HTTP_AUTHORIZATION"), environ.get("REMOTE_ADDR"))
        if status != 200:
            reason = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}[status]
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            if status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="fairtix metrics"'))
            start_response(f"{status} {reason}", headers)
            return [f"{reason}\n".encode()]
        body, content_type = render()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    return app
