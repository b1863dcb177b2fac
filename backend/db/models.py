"""Imports every domain's models so ``Base.metadata`` is complete (Alembic and tests use it)."""

from backend import outbox
from backend.auth import models as auth_models
from backend.catalog import models as catalog_models
from backend.chain import models as chain_models
from backend.db.base import Base
from backend.door import models as door_models
from backend.fulfilment import models as fulfilment_models
from backend.notify import models as notify_models
from backend.payments import models as payments_models
from backend.queue import models as queue_models
from backend.resale import models as resale_models
from backend.sales import models as sales_models
from backend.tickets import models as tickets_models

__all__ = [
    "Base",
    "auth_models",
    "catalog_models",
    "chain_models",
    "door_models",
    "fulfilment_models",
    "notify_models",
    "outbox",
    "payments_models",
    "queue_models",
    "resale_models",
    "sales_models",
    "tickets_models",
]
