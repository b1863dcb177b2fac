"""Fixtures for notification tests: a webhook receiver and an SMTP server, both local."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.config import Settings
from tests.notify.receiver import Receiver, start_receiver, stop_receiver
from tests.notify.smtp_fake import FakeSmtp


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec, thread = start_receiver()
    try:
        yield rec
    finally:
        stop_receiver(rec, thread)


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtp]:
    server = FakeSmtp().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(settings: Settings, smtp_server: FakeSmtp) -> Settings:
    # The receiver listens on loopback, which is refused unless allow-listed (as it is here).
    return settings.model_copy(
        update={
            "webhook_allowed_hosts": ["127.0.0.1"],
            "webhook_timeout_seconds": 2.0,
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "smtp_starttls": False,
            "smtp_from": "fairtix <receipts@fairtix.test>",
        }
    )
