"""Webhook endpoints, publishing notifications, contact e-mails. No HTTP here.

Publishing is transactional: :func:`publish` writes one delivery row per subscribed endpoint and
one outbox message each in the caller's session, so a notification exists exactly when the state
change it reports was committed. Other domains call it from their own transaction::

    from backend.notify import service as notify

    notify.publish(session, notify.EVENT_CANCELLED, event.id, {"event_id": event.id, ...})
    notify.publish(session, notify.TICKET_TRANSFERRED, event.id, {"token_id": 1, "from": ...,
                                                                   "to": ..., "tx_hash": ...})

Payloads carry ids, wallet addresses and transaction hashes only: never e-mails or names.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    exists,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from backend import outbox
from backend.auth.service import Principal
from backend.catalog.models import Event
from backend.catalog.service import get_event
from backend.config import Settings
from backend.db.base import utcnow
from backend.notify.errors import (
    ContactNotFound,
    InvalidContact,
    InvalidWebhook,
    InvalidWebhookUrl,
    UnknownNotification,
    WebhookEventForbidden,
    WebhookNotFound,
)
from backend.notify.models import (
    NO_CONTACT,
    NO_SMTP,
    RECEIPT_SKIPPED,
    ContactEmail,
    Receipt,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.notify.schemas import WebhookCreate
from backend.sales.models import Order

ORDER_FULFILLED = "order.fulfilled"
TICKET_TRANSFERRED = "ticket.transferred"
EVENT_CANCELLED = "event.cancelled"
ORDER_DISPUTED = "order.disputed"
# The resale market (backend.resale): a listing went on or off the market, a ticket was resold.
LISTING_CREATED = "listing.created"
LISTING_CANCELLED = "listing.cancelled"
TICKET_RESOLD = "ticket.resold"
KINDS = frozenset(
    {
        ORDER_FULFILLED,
        TICKET_TRANSFERRED,
        EVENT_CANCELLED,
        ORDER_DISPUTED,
        LISTING_CREATED,
        LISTING_CANCELLED,
        TICKET_RESOLD,
    }
)

# Outbox message kinds the worker hands to backend.notify.delivery.
DELIVER_WEBHOOK = "notify.webhook"
SEND_RECEIPT = "notify.receipt"

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
# Every publish fans out to each endpoint; a bound keeps one event from queueing unbounded work.
MAX_ENDPOINTS_PER_OWNER = 20

# ASCII only (RFC 5321 dot-atom local part): an SMTPUTF8 address would be refused by many relays.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)


def endpoint_secret(service_secret: bytes, salt: str) -> str:
    """The signing secret of an endpoint, derived rather than stored.

    We must sign every later delivery, so the secret can't be hashed away like a password; keeping
    it in the table would hand it to anyone who reads a backup. HMAC(service secret, random
    per-endpoint salt) needs both the table and FAIRTIX_SECRET_KEY to rebuild. The price: rotating
    FAIRTIX_SECRET_KEY changes every endpoint's secret, so organizers must register again.
    """
    digest = hmac.new(service_secret, b"fairtix-webhook:" + salt.encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()


def private_hosts_allowed(host: str, settings: Settings) -> bool:
    allowed = {entry.lower().strip("[]") for entry in settings.webhook_allowed_hosts}
    return settings.env == "development" or host.lower() in allowed


def check_url(url: str, settings: Settings) -> str:
    """Return ``url`` if we are willing to POST to it, else raise InvalidWebhookUrl.

    Outside development, hosts that are or resolve to private, loopback, link-local or otherwise
    non-public addresses are refused (the worker would otherwise probe the internal network for
    anyone with an organizer role) unless FAIRTIX_WEBHOOK_ALLOWED_HOSTS names them. The worker
    checks again before each attempt, as DNS answers change.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(url, f"it can't be parsed ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl(url, "only http and https URLs are supported")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl(url, "it names no host")
    if any(ch.isspace() for ch in url):
        raise InvalidWebhookUrl(url, "it contains whitespace")
    if private_hosts_allowed(host, settings):
        return url
    for address in _addresses(url, host, port or (443 if parts.scheme == "https" else 80)):
        if not address.is_global or address.is_multicast:
            raise InvalidWebhookUrl(
                url,
                f"{host} is a non-public address ({address}); list it in "
                "FAIRTIX_WEBHOOK_ALLOWED_HOSTS to allow it",
            )
    return url


def _addresses(
    url: str, host: str, port: int
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        mapped = getattr(literal, "ipv4_mapped", None)
        return [mapped or literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidWebhookUrl(url, f"{host} does not resolve ({exc})") from None
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        found.append(mapped or address)
    return found


def create_endpoint(
    session: Session, settings: Settings, owner: Principal, spec: WebhookCreate
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its signing secret (which is not stored)."""
    if spec.event_id is not None:
        event = get_event(session, spec.event_id)
        if not owner.manages(event.organizer_address):
            raise WebhookEventForbidden(spec.event_id, owner.address)
    check_url(spec.url, settings)
    if len(list_endpoints(session, owner.address)) >= MAX_ENDPOINTS_PER_OWNER:
        raise InvalidWebhook(
            f"you already have {MAX_ENDPOINTS_PER_OWNER} webhook endpoints; delete one first"
        )
    endpoint = WebhookEndpoint(
        owner_address=owner.address,
        event_id=spec.event_id,
        url=spec.url,
        events=list(dict.fromkeys(spec.events)),
        secret_salt=secrets.token_hex(16),
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint, endpoint_secret(settings.signing_secret, endpoint.secret_salt)


def list_endpoints(session: Session, owner_address: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.owner_address == owner_address,
                WebhookEndpoint.deleted_at.is_(None),
            )
            .order_by(WebhookEndpoint.id)
        )
    )


def owned_endpoint(session: Session, owner_address: str, endpoint_id: int) -> WebhookEndpoint:
    """The caller's live endpoint; someone else's is reported as missing, not as forbidden."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.owner_address != owner_address or endpoint.deleted_at:
        raise WebhookNotFound(endpoint_id)
    return endpoint


def delete_endpoint(session: Session, owner_address: str, endpoint_id: int) -> None:
    endpoint = owned_endpoint(session, owner_address, endpoint_id)
    now = utcnow()
    endpoint.deleted_at = now
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
        .values(status=CANCELLED, finished_at=now, last_error="endpoint deleted")
    )


def deliveries_of(
    session: Session, owner_address: str, endpoint_id: int, limit: int, offset: int
) -> list[WebhookDelivery]:
    endpoint = owned_endpoint(session, owner_address, endpoint_id)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def _subscribed_endpoints(session: Session, event_id: int) -> list[WebhookEndpoint]:
    """The live endpoints that may want the event's notifications, read once per transaction:
    a mint batch fulfils a hundred orders of one event in one. Read without autoflush, which
    would otherwise flush the batch's pending tickets order by order instead of all at once."""
    memo: dict[int, list[WebhookEndpoint]] = session.info.setdefault("fairtix.endpoints", {})
    if event_id in memo:
        return memo[event_id]
    with session.no_autoflush:
        event = session.get(Event, event_id)
        if event is None:
            raise LookupError(f"notifications for event {event_id}, which does not exist")
        endpoints = list(
            session.scalars(
                select(WebhookEndpoint)
                .where(_subscribed(literal(event_id), literal(event.organizer_address)))
                .order_by(WebhookEndpoint.id)
            )
        )
    memo[event_id] = endpoints
    return endpoints


def _subscribed(
    event_id: SQLColumnExpression[int], organizer: SQLColumnExpression[str]
) -> ColumnElement[bool]:
    return and_(
        WebhookEndpoint.deleted_at.is_(None),
        or_(
            WebhookEndpoint.event_id == event_id,
            (WebhookEndpoint.event_id.is_(None)) & (WebhookEndpoint.owner_address == organizer),
        ),
    )


def any_subscribed_clause(
    event_id: SQLColumnExpression[int], organizer: SQLColumnExpression[str]
) -> ColumnElement[bool]:
    """SQL: some live endpoint may want the event's notifications. Read with the other facts of
    a request (a listing's), false lets :func:`none_subscribed` spare publish its lookup."""
    return exists().where(_subscribed(event_id, organizer))


def none_subscribed(session: Session, event_id: int) -> None:
    """No endpoint listens to the event, as :func:`any_subscribed_clause` read it in this
    transaction: publishing in it queues nothing, without reading the endpoints again."""
    memo: dict[int, list[WebhookEndpoint]] = session.info.setdefault("fairtix.endpoints", {})
    memo.setdefault(event_id, [])


def publish(session: Session, kind: str, event_id: int, payload: dict[str, Any]) -> int:
    """Queue ``kind`` for every endpoint subscribed to it for this event, in the caller's
    transaction. Returns how many deliveries were queued (0 when nobody listens)."""
    if kind not in KINDS:
        raise UnknownNotification(kind)
    endpoints = _subscribed_endpoints(session, event_id)
    now = utcnow()
    queued = 0
    for endpoint in endpoints:
        if kind not in endpoint.events:
            continue
        delivery_id = "evt_" + uuid.uuid4().hex
        body = json.dumps(
            {
                "id": delivery_id,
                "type": kind,
                "created": now.isoformat(),
                "event_id": event_id,
                "data": payload,
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                delivery_id=delivery_id,
                kind=kind,
                body=body,
                status=PENDING,
                attempts=0,
                created_at=now,
            )
        )
        outbox.enqueue(session, DELIVER_WEBHOOK, {"delivery_id": delivery_id})
        queued += 1
    return queued


def _order_data(order: Order, token_ids: list[int]) -> dict[str, Any]:
    """What every order notification says about the order."""
    return {
        "order_id": order.id,
        "event_id": order.event_id,
        "tier_id": order.tier_id,
        "buyer_address": order.buyer_address,
        "token_ids": token_ids,
    }


def order_fulfilled(
    session: Session,
    order: Order,
    token_ids: list[int],
    tx_hash: str,
    *,
    receipt_skipped: str | None = None,
) -> None:
    """Called in the transaction that marks an order fulfilled: webhooks and the receipt.
    ``receipt_skipped``: why no receipt will be sent, known already (see receipts_not_sent);
    recorded here instead of queuing a message that would only find it out."""
    publish(
        session,
        ORDER_FULFILLED,
        order.event_id,
        {**_order_data(order, token_ids), "tx_hash": tx_hash},
    )
    if receipt_skipped is not None:
        session.add(Receipt(order_id=order.id, status=RECEIPT_SKIPPED, detail=receipt_skipped))
        return
    # The recipient is looked up when sending, so the outbox never holds an e-mail address.
    outbox.enqueue(session, SEND_RECEIPT, {"order_id": order.id})


def receipts_not_sent(
    session: Session, orders: Sequence[Order], smtp_configured: bool
) -> dict[int, str]:
    """Why no receipt will go to each of ``orders`` whose buyer can't get one: no contact
    e-mail (read for all of them in one query), or no SMTP relay. In an on-sale most buyers
    give no e-mail; a mint batch records their receipts as skipped at once, where a queued
    message each cost the worker a claim and a transaction to learn the same."""
    buyers = {order.buyer_address for order in orders}
    with_contact = set(
        session.scalars(select(ContactEmail.address).where(ContactEmail.address.in_(buyers)))
    )
    reasons = {}
    for order in orders:
        if order.buyer_address not in with_contact:
            reasons[order.id] = NO_CONTACT
        elif not smtp_configured:
            reasons[order.id] = NO_SMTP
    return reasons


def order_disputed(
    session: Session,
    order: Order,
    token_ids: list[int],
    amount: int | None,
    currency: str | None,
) -> None:
    """Called in the transaction that records a chargeback on ``order``, or its new status:
    the organizer decides about the tickets (they stay valid on chain)."""
    assert order.disputed_at is not None
    publish(
        session,
        ORDER_DISPUTED,
        order.event_id,
        {
            **_order_data(order, token_ids),
            "status": order.dispute_status,
            "reason": order.dispute_reason,
            "amount_cents": amount,
            "currency": currency,
            "disputed_at": order.disputed_at.isoformat(),
        },
    )


def event_cancelled(
    session: Session,
    *,
    event_id: int,
    reason: str,
    cancelled_at: datetime,
    cancelled_by: str,
    orders_cancelled: int,
    card_refunds_queued: int,
    crypto_orders_claimable: int,
    card_orders_following_tickets: int = 0,
) -> None:
    """Called in the transaction that cancels the event. The contract is cancelled afterwards
    by the worker; crypto refunds can be claimed once GET /events/{id} shows it on chain."""
    publish(
        session,
        EVENT_CANCELLED,
        event_id,
        {
            "event_id": event_id,
            "reason": reason,
            "cancelled_at": cancelled_at.isoformat(),
            "cancelled_by": cancelled_by,
            "orders_cancelled": orders_cancelled,
            "card_refunds_queued": card_refunds_queued,
            "crypto_orders_claimable": crypto_orders_claimable,
            "card_orders_following_tickets": card_orders_following_tickets,
        },
    )


def ticket_transferred(
    session: Session,
    *,
    event_id: int,
    token_id: int,
    order_id: int,
    sender: str,
    recipient: str,
    tx_hash: str,
    block_number: int,
    reverted: bool = False,
) -> None:
    """Called in the transaction that records a ticket's new holder. ``reverted``: a reorg
    orphaned the transfer in ``tx_hash``, and the ticket is back with ``recipient`` (its holder
    before that transfer); if the transfer is mined again, another notification follows."""
    publish(
        session,
        TICKET_TRANSFERRED,
        event_id,
        {
            "token_id": token_id,
            "order_id": order_id,
            "from": sender,
            "to": recipient,
            "tx_hash": tx_hash,
            "block_number": block_number,
            "reverted": reverted,
        },
    )


def normalise_email(email: str) -> str:
    email = email.strip()
    # CR/LF would let an address inject headers into the receipt.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in email):
        raise InvalidContact("the e-mail address contains control characters")
    local = email.rpartition("@")[0]
    if len(email) > 254 or len(local) > 64 or not _EMAIL.match(email):
        raise InvalidContact(f"{email!r} is not an e-mail address like name@example.org")
    local, _, domain = email.rpartition("@")
    if "." not in domain or ".." in domain or any(len(label) > 63 for label in domain.split(".")):
        raise InvalidContact(f"{domain!r} is not a mail domain")
    return f"{local}@{domain.lower()}"


def set_contact(session: Session, address: str, email: str) -> ContactEmail:
    normalised = normalise_email(email)
    contact = session.get(ContactEmail, address)
    if contact is None:
        contact = ContactEmail(address=address, email=normalised, updated_at=utcnow())
        session.add(contact)
    else:
        contact.email = normalised
    return contact


def get_contact(session: Session, address: str) -> ContactEmail:
    contact = session.get(ContactEmail, address)
    if contact is None:
        raise ContactNotFound(address)
    return contact


def delete_contact(session: Session, address: str) -> None:
    session.delete(get_contact(session, address))
