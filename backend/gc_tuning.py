"""The interpreter's cyclic garbage collector, tuned for a long-running service process."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Leave what startup built out of the collector's full passes.

    A started API process holds some 240,000 objects the collector tracks (modules, FastAPI's
    routes and models, SQLAlchemy's mappers, web3's contract ABIs), and they live as long as the
    process. Every full pass walked all of them again: about 150 ms of CPU each, and in
    bench-onsale about 4% of the API's CPU over the sale. Frozen, they are skipped; what
    requests create is collected as before. Freezing is a constant-time move of the
    collector's lists, so nothing is collected first: the little garbage startup left stays.
    """
    gc.freeze()


def thaw() -> None:
    """Undo freeze_startup_objects: at shutdown, so an app torn down inside a longer-lived
    process (the tests build hundreds) can be collected."""
    gc.unfreeze()
