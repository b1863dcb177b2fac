"""The long-lived objects one API process (or worker) shares, built once by backend.app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.config import Settings

if TYPE_CHECKING:
    from backend.chain.client import ChainClient
    from backend.ipfs.blockstore import Blockstore
    from backend.payments.provider import CardProvider
    from backend.queue.service import WaitingRoom


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    chain: ChainClient
    blockstore: Blockstore
    cards: CardProvider
    queue: WaitingRoom  # the waiting room on the configured store (backend.queue)
