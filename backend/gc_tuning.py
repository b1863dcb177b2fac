"""The interpreter's cyclic garbage collector, tuned for a long-running service process."""

from __future__ import annotations

import gc

# Young collections run after this many more container objects were allocated than freed
# (CPython's default is 700). A request allocates and frees thousands, and most go by reference
# counting; at 700 an API process ran a young collection every few requests, 3-4% of its CPU in
# bench-onsale. At 50,000 what piles up between collections is the cyclic garbage of a few
# hundred requests (their sessions and ORM objects): some megabytes.
YOUNG_COLLECTION_THRESHOLD = 50_000
_DEFAULT_YOUNG_THRESHOLD = gc.get_threshold()[0]


def tune_for_service() -> None:
    """Call once startup is done. Freezes what startup built (some 240,000 objects in an API
    process: modules, FastAPI's routes and models, SQLAlchemy's mappers, web3's contract ABIs),
    which lives as long as the process: every full pass walked it all again, about 150 ms of
    CPU each and 4% of the API's CPU over bench-onsale's sale. Frozen, it is skipped; what
    requests create is collected as before, less often. Freezing is a constant-time move of the
    collector's lists, so nothing is collected first: the little garbage startup left stays."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def untune() -> None:
    """Undo tune_for_service: at shutdown, so an app torn down inside a longer-lived process
    (the tests build hundreds) can be collected, with the collector as it was."""
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_DEFAULT_YOUNG_THRESHOLD, middle, old)
