"""Builds the waiting room for the configured store; backend.app calls this once per process."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from backend.auth.session_cache import NoSessionCache, RedisSessionCache, SessionCache
from backend.config import Settings
from backend.queue.redis_store import RedisQueueStores
from backend.queue.service import SESSION_INFO_KEY, QueueDefaults, WaitingRoom
from backend.queue.sql_store import SqlQueueStores
from backend.queue.store import QueueStores


def build_waiting_room(settings: Settings, sessions: sessionmaker[Session]) -> WaitingRoom:
    stores: QueueStores
    session_cache: SessionCache
    if settings.queue_store == "redis":
        redis_stores = RedisQueueStores(settings.redis_url, settings.queue_redis_prefix)
        session_cache = RedisSessionCache(
            redis_stores.client,
            settings.queue_redis_prefix,
            redis_stores.breaker,
            redis_stores.lane,
        )
        stores = redis_stores
    else:
        stores, session_cache = SqlQueueStores(sessions), NoSessionCache()
    room = WaitingRoom(
        stores=stores,
        sessions=sessions,
        secret=settings.signing_secret,
        session_cache=session_cache,
        defaults=QueueDefaults(
            admissions_per_minute=settings.admissions_per_minute,
            grace=timedelta(seconds=settings.queue_grace_seconds),
            token_ttl=timedelta(seconds=settings.queue_token_ttl_seconds),
        ),
    )
    # Sales and fulfilment call the queue from inside their own transactions; the session
    # carries the room so they reach the same store (backend.queue.service._store_of).
    sessions.configure(info={SESSION_INFO_KEY: room})
    return room
