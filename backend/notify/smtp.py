"""Order receipts: the message and its sending over SMTP (smtplib)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

from backend.config import Settings


@dataclass(frozen=True)
class ReceiptContent:
    order_id: int
    event_name: str
    starts_at: str
    venue: str
    tier: str
    quantity: int
    token_ids: list[int]
    tx_hash: str
    chain_id: int
    contract_address: str


def build_receipt(settings: Settings, recipient: str, receipt: ReceiptContent) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = recipient
    message["Subject"] = f"Your tickets for {receipt.event_name} (order {receipt.order_id})"
    message["Date"] = formatdate(localtime=False)
    # Stable per order: a receipt re-sent after a crash threads with (or is dropped as) the first.
    domain = urlsplit(settings.public_base_url).hostname or "fairtix.invalid"
    message["Message-ID"] = f"<receipt-{receipt.order_id}@{domain}>"
    tokens = ", ".join(str(token_id) for token_id in receipt.token_ids)
    message.set_content(
        "\n".join(
            [
                "Thank you for your order. Your tickets are in your wallet.",
                "",
                f"Event:        {receipt.event_name}",
                f"Date:         {receipt.starts_at}",
                f"Venue:        {receipt.venue or '-'}",
                f"Tier:         {receipt.tier}",
                f"Quantity:     {receipt.quantity}",
                f"Token ids:    {tokens}",
                f"Transaction:  {receipt.tx_hash}",
                f"Order:        {receipt.order_id}",
                f"Contract:     {receipt.contract_address} (chain {receipt.chain_id})",
                "",
                "You received this because you gave this address for receipts.",
                f"Remove it at any time: DELETE {settings.public_base_url}/me/contact",
                "",
            ]
        )
    )
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    """Send one message through the configured relay; smtplib errors propagate."""
    assert settings.smtp_host is not None
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user is not None:
            password = settings.smtp_password
            smtp.login(settings.smtp_user, "" if password is None else password.get_secret_value())
        smtp.send_message(message)
