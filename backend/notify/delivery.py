"""The worker's side of notifications: POST signed webhooks, send receipts.

Both handlers are idempotent, as outbox handlers must be: a delivery or receipt that reached a
final state is not attempted again when its message comes back after a crash. A webhook may
still arrive twice (sent, then the worker died before recording it); receivers drop duplicates
by Fairtix-Event-Id.
"""

from __future__ import annotations

import logging
import smtplib
import time
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend import __version__
from backend.catalog.models import Event, Tier
from backend.config import Settings
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.notify import service, signing, smtp
from backend.notify.errors import DeliveryFailed, InvalidWebhookUrl
from backend.notify.models import (
    NO_CONTACT,
    NO_SMTP,
    RECEIPT_SENT,
    RECEIPT_SKIPPED,
    ContactEmail,
    Receipt,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.observability import instruments
from backend.sales.models import Order
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.notify")


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class Notifier:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    # -- webhooks -------------------------------------------------------------------------

    def deliver_webhook(self, payload: dict[str, Any]) -> None:
        """One attempt at one delivery. Raises DeliveryFailed to be retried with backoff."""
        delivery_id = str(payload["delivery_id"])
        with transaction(self._sessions) as session:
            delivery = session.scalar(
                select(WebhookDelivery)
                .where(WebhookDelivery.delivery_id == delivery_id)
                .with_for_update()
            )
            if delivery is None or delivery.status != service.PENDING:
                return
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            assert endpoint is not None
            if endpoint.deleted_at is not None:
                self._finish(delivery, service.CANCELLED, None, "endpoint deleted")
                return
            # Counted before sending, so an attempt cut short by a crash still counts.
            delivery.attempts += 1
            delivery.last_attempt_at = utcnow()
            attempt, url, body = delivery.attempts, endpoint.url, delivery.body.encode()
            secret = service.endpoint_secret(self._settings.signing_secret, endpoint.secret_salt)

        status, error, retry = self._post(url, delivery_id, secret, body)
        with transaction(self._sessions) as session:
            delivery = session.scalar(
                select(WebhookDelivery)
                .where(WebhookDelivery.delivery_id == delivery_id)
                .with_for_update()
            )
            assert delivery is not None
            if delivery.status != service.PENDING:  # the endpoint was deleted meanwhile
                return
            if error is None:
                self._finish(delivery, service.DELIVERED, status, None)
            elif retry and attempt < self._settings.outbox_max_attempts:
                delivery.last_status_code = status
                delivery.last_error = error
            else:
                if retry:
                    error = f"{error}; gave up after {attempt} attempts"
                self._finish(delivery, service.FAILED, status, error)
        outcome = "delivered" if error is None else ("will retry" if retry else "failed")
        log.info(
            "webhook %s",
            outcome,
            extra={"delivery_id": delivery_id, "attempt": attempt, "status": status, "url": url},
        )
        if error is None:
            instruments.WEBHOOK_DELIVERIES.labels("delivered").inc()
        elif retry and attempt < self._settings.outbox_max_attempts:
            instruments.WEBHOOK_DELIVERIES.labels("retry").inc()
            raise DeliveryFailed(url, error)
        else:
            instruments.WEBHOOK_DELIVERIES.labels("failed").inc()

    def _post(
        self, url: str, delivery_id: str, secret: str, body: bytes
    ) -> tuple[int | None, str | None, bool]:
        """(HTTP status, error or None, whether a later attempt may succeed)."""
        try:
            service.check_url(url, self._settings)
        except InvalidWebhookUrl as exc:
            return None, str(exc), False
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"fairtix-webhooks/{__version__}",
            signing.EVENT_ID_HEADER: delivery_id,
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body),
        }
        # A client per attempt: deliveries are rare next to their timeouts, and nothing is left
        # open when the worker stops. Redirects are not followed: a 3xx is an answer, not a hop.
        timeout = self._settings.webhook_timeout_seconds
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as http:
                response = http.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return None, f"no answer within {timeout:g} s", True
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], True
        code = response.status_code
        if 200 <= code < 300:
            return code, None, True
        return code, f"HTTP {code}", _retryable(code)

    @staticmethod
    def _finish(
        delivery: WebhookDelivery, status: str, code: int | None, error: str | None
    ) -> None:
        delivery.status = status
        delivery.last_status_code = code
        delivery.last_error = error
        delivery.finished_at = utcnow()

    # -- receipts -------------------------------------------------------------------------

    def send_receipt(self, payload: dict[str, Any]) -> None:
        order_id = int(payload["order_id"])
        settings = self._settings
        with transaction(self._sessions) as session:
            if session.get(Receipt, order_id) is not None:
                return
            order = session.get(Order, order_id)
            if order is None:
                return
            contact = session.get(ContactEmail, order.buyer_address)
            if contact is None:
                self._record(session, order_id, RECEIPT_SKIPPED, NO_CONTACT)
                return
            if settings.smtp_host is None:
                self._record(session, order_id, RECEIPT_SKIPPED, NO_SMTP)
                return
            recipient = contact.email
            message = smtp.build_receipt(settings, recipient, self._content(session, order))

        try:
            smtp.send(settings, message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            self._record_now(order_id, "failed", f"refused by the relay: {exc}"[:200])
            return
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                self._record_now(order_id, "failed", f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
                return
            raise DeliveryFailed(f"{settings.smtp_host}:{settings.smtp_port}", str(exc)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(
                f"{settings.smtp_host}:{settings.smtp_port}", f"{type(exc).__name__}: {exc}"
            ) from exc
        self._record_now(order_id, RECEIPT_SENT, "sent by SMTP")

    @staticmethod
    def _content(session: Session, order: Order) -> smtp.ReceiptContent:
        event = session.get(Event, order.event_id)
        tier = session.get(Tier, order.tier_id)
        assert event is not None and tier is not None
        tickets = session.execute(
            select(Ticket.token_id, Ticket.tx_hash)
            .where(Ticket.order_id == order.id)
            .order_by(Ticket.token_id)
        ).all()
        # Card orders record the mint on the order; crypto purchases only on their tickets.
        tx_hash = order.mint_tx_hash or (tickets[0].tx_hash if tickets else "")
        starts: datetime = event.starts_at
        return smtp.ReceiptContent(
            order_id=order.id,
            event_name=event.name,
            starts_at=starts.strftime("%A %d %B %Y, %H:%M UTC"),
            venue=event.venue,
            tier=tier.name,
            quantity=order.quantity,
            token_ids=[row.token_id for row in tickets],
            tx_hash=tx_hash,
            chain_id=event.chain_id,
            contract_address=event.contract_address,
        )

    def _record_now(self, order_id: int, status: str, detail: str) -> None:
        with transaction(self._sessions) as session:
            if session.get(Receipt, order_id) is None:
                self._record(session, order_id, status, detail)

    @staticmethod
    def _record(session: Session, order_id: int, status: str, detail: str) -> None:
        session.add(Receipt(order_id=order_id, status=status, detail=detail, recorded_at=utcnow()))
        log.info("receipt %s", status, extra={"order_id": order_id, "detail": detail})
