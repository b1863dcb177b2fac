"""The API process freezes what startup built, out of the garbage collector's full passes, and
collects young objects less often; both are undone at shutdown."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.gc_tuning import YOUNG_COLLECTION_THRESHOLD
from tests.conftest import TEST_SERVER


def test_the_collector_is_tuned_while_the_app_runs_and_restored_after(
    settings: Settings, chain: ChainClient
) -> None:
    gc.unfreeze()  # whatever an earlier test left
    default_threshold = gc.get_threshold()
    app = create_app(settings, chain=chain)
    with TestClient(app, base_url=TEST_SERVER) as client:
        assert client.get("/livez").status_code == 200
        # The app, its runtime and every module loaded by then: far more than a handful.
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *default_threshold[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == default_threshold
