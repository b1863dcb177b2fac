"""``GET /ipfs/{cid}`` over a LocalBlockstore, with the project's problem+json handlers."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from backend.ipfs.blockstore import LocalBlockstore
from backend.ipfs.cid import parse_cid
from backend.ipfs.router import router
from backend.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE, install_problem_handlers

with warnings.catch_warnings():
    # Starlette deprecates its httpx fallback in favour of httpx2; the client behaves the
    # same, but under -W error the warning would abort collection.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

METADATA = {"name": "Row A, Seat 12", "attributes": [{"trait_type": "tier", "value": "GA"}]}
UNKNOWN_CID = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlockstore:
    return LocalBlockstore(tmp_path / "ipfs")


@pytest.fixture
def client(store: LocalBlockstore) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router)
    install_problem_handlers(app)
    app.state.blockstore = store
    with TestClient(app) as test_client:
        yield test_client


def test_json_metadata_is_served_immutable_with_its_cid_as_etag(
    client: TestClient, store: LocalBlockstore
) -> None:
    body = json.dumps(METADATA).encode()
    cid = store.put(body)
    response = client.get(f"/ipfs/{cid}")
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == f'"{cid}"'
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b"[1, 2, 3]", "application/octet-stream"),
        (b'{"truncated": ', "application/octet-stream"),
        (b"\x89PNG\r\n\x1a\n", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_media_type_is_sniffed_from_the_bytes(
    client: TestClient, store: LocalBlockstore, body: bytes, media_type: str
) -> None:
    response = client.get(f"/ipfs/{store.put(body)}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == body


def test_svg_cannot_run_script_on_the_api_origin(
    client: TestClient, store: LocalBlockstore
) -> None:
    response = client.get(f"/ipfs/{store.put(b'<svg><script>alert(1)</script></svg>')}")
    assert "sandbox" in response.headers["content-security-policy"]


def test_cidv1_rendering_serves_the_same_content(
    client: TestClient, store: LocalBlockstore
) -> None:
    body = json.dumps(METADATA).encode()
    v1 = parse_cid(store.put(body)).to_v1().encode()
    response = client.get(f"/ipfs/{v1}")
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["etag"] == f'"{v1}"'


@pytest.mark.parametrize("tag", ['"{cid}"', 'W/"{cid}"', '"other", "{cid}"', "*"])
def test_matching_if_none_match_is_not_modified(
    client: TestClient, store: LocalBlockstore, tag: str
) -> None:
    cid = store.put(json.dumps(METADATA).encode())
    response = client.get(f"/ipfs/{cid}", headers={"If-None-Match": tag.format(cid=cid)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == f'"{cid}"'
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_other_if_none_match_serves_the_content(client: TestClient, store: LocalBlockstore) -> None:
    cid = store.put(b"{}")
    response = client.get(f"/ipfs/{cid}", headers={"If-None-Match": f'"{UNKNOWN_CID}"'})
    assert response.status_code == 200
    assert response.content == b"{}"


def test_wildcard_if_none_match_for_missing_content_is_not_found(client: TestClient) -> None:
    response = client.get(f"/ipfs/{UNKNOWN_CID}", headers={"If-None-Match": "*"})
    assert response.status_code == 404


def test_unknown_cid_is_a_404_problem(client: TestClient) -> None:
    response = client.get(f"/ipfs/{UNKNOWN_CID}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == TYPE_BASE + "content-not-found"
    assert problem["status"] == 404
    assert UNKNOWN_CID in problem["detail"]
    assert problem["instance"] == f"/ipfs/{UNKNOWN_CID}"


@pytest.mark.parametrize("text", ["not-a-cid", "Qm123", "BAFYBEIF7ZTNHQ65LUMVVTR4EKCWD2IFWGM3A"])
def test_malformed_cid_is_a_400_problem(client: TestClient, text: str) -> None:
    response = client.get(f"/ipfs/{text}")
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == TYPE_BASE + "invalid-cid"
    assert problem["title"] == "Invalid CID"


def test_corrupt_content_is_a_502_problem_not_the_bytes(
    client: TestClient, store: LocalBlockstore, tmp_path: Path
) -> None:
    cid = store.put(b'{"ok": true}')
    [path] = [p for p in (tmp_path / "ipfs").rglob("*") if p.is_file()]
    path.write_bytes(b'{"ok": false}')
    response = client.get(f"/ipfs/{cid}")
    assert response.status_code == 502
    assert response.json()["type"] == TYPE_BASE + "corrupt-content"
    assert b"false" not in response.content
