"""Both blockstore adapters pass one contract suite; each then has its own failure modes."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.ipfs.blockstore import Blockstore, KuboBlockstore, LocalBlockstore, make_blockstore
from backend.ipfs.cid import CHUNK_SIZE, compute_cid, parse_cid
from backend.ipfs.errors import (
    CidMismatch,
    ContentNotFound,
    CorruptContent,
    InvalidCid,
    IpfsUnavailable,
)
from tests.ipfs.kubo_fake import KUBO_VERSION, FakeKubo, running_kubo_fake

METADATA = (
    b'{"name": "Row A, Seat 12", "image": "ipfs://QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"}'
)
EMPTY_FILE_CID = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


@pytest.fixture
def kubo() -> Iterator[FakeKubo]:
    with running_kubo_fake() as node:
        yield node


@pytest.fixture
def kubo_store(kubo: FakeKubo) -> Iterator[KuboBlockstore]:
    store = KuboBlockstore(kubo.multiaddr, timeout=10)
    yield store
    store.close()


@pytest.fixture(params=["local", "kubo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Blockstore:
    if request.param == "local":
        return LocalBlockstore(tmp_path / "ipfs")
    kubo_store: KuboBlockstore = request.getfixturevalue("kubo_store")
    return kubo_store


# --- the contract every adapter meets -------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE + 1])
def test_put_returns_the_ipfs_add_cid_and_get_returns_the_bytes(
    store: Blockstore, size: int
) -> None:
    data = bytes(i % 253 for i in range(size))
    cid = store.put(data)
    assert cid == compute_cid(data)
    assert store.get(cid) == data
    assert store.has(cid)


def test_put_is_idempotent(store: Blockstore) -> None:
    assert store.put(METADATA) == store.put(METADATA)
    assert store.get(compute_cid(METADATA)) == METADATA


def test_get_by_the_cidv1_rendering_of_the_same_root(store: Blockstore) -> None:
    cid = store.put(METADATA)
    assert store.get(parse_cid(cid).to_v1().encode()) == METADATA


def test_unknown_cid_is_not_found(store: Blockstore) -> None:
    assert not store.has(EMPTY_FILE_CID)
    with pytest.raises(ContentNotFound, match=EMPTY_FILE_CID):
        store.get(EMPTY_FILE_CID)
    with pytest.raises(ContentNotFound):
        store.pin(EMPTY_FILE_CID)


def test_pin_accepts_stored_content(store: Blockstore) -> None:
    store.pin(store.put(METADATA))


@pytest.mark.parametrize("operation", ["get", "has", "pin"])
def test_malformed_cid_is_invalid(store: Blockstore, operation: str) -> None:
    with pytest.raises(InvalidCid):
        getattr(store, operation)("not-a-cid")


# --- LocalBlockstore -------------------------------------------------------------------------


def _stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_local_files_are_sharded_by_cid_suffix(tmp_path: Path) -> None:
    cid = LocalBlockstore(tmp_path).put(METADATA)
    name = parse_cid(cid).to_v1().encode()
    assert _stored_files(tmp_path) == [tmp_path / name[-3:-1] / name]


def test_local_content_survives_a_new_instance(tmp_path: Path) -> None:
    cid = LocalBlockstore(tmp_path).put(METADATA)
    reopened = LocalBlockstore(tmp_path)
    assert reopened.has(cid)
    assert reopened.get(cid) == METADATA


def test_local_idempotent_put_leaves_one_file_and_no_temporaries(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    for _ in range(3):
        store.put(METADATA)
    assert len(_stored_files(tmp_path)) == 1


def test_local_corrupted_file_is_reported_not_served(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    cid = store.put(METADATA)
    [path] = _stored_files(tmp_path)
    path.write_bytes(b"junk")
    with pytest.raises(CorruptContent, match=cid) as caught:
        store.get(cid)
    assert caught.value.cid == cid


def test_local_put_repairs_a_corrupted_copy(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    cid = store.put(METADATA)
    [path] = _stored_files(tmp_path)
    path.write_bytes(METADATA[:-1])
    store.put(METADATA)
    assert store.get(cid) == METADATA


def test_local_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    store = LocalBlockstore(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        store.put(METADATA)
    assert _stored_files(tmp_path) == []
    assert not store.has(compute_cid(METADATA))


# --- KuboBlockstore over the fake RPC API --------------------------------------------------


def test_kubo_put_adds_with_default_import_settings_and_pins(
    kubo: FakeKubo, kubo_store: KuboBlockstore
) -> None:
    cid = kubo_store.put(METADATA)
    [add] = kubo.calls_to("add")
    assert add.option("cid-version") == "0"
    assert add.option("raw-leaves") == "false"
    assert add.option("chunker") == "size-262144"
    assert add.option("pin") == "true"
    assert cid in kubo.pins


def test_kubo_reads_stay_offline(kubo: FakeKubo, kubo_store: KuboBlockstore) -> None:
    cid = kubo_store.put(METADATA)
    kubo_store.get(cid)
    kubo_store.has(cid)
    assert [call.option("offline") for call in kubo.calls_to("cat")] == ["true"]
    assert [call.option("offline") for call in kubo.calls_to("block/stat")] == ["true"]


def test_kubo_pin_asks_for_a_recursive_pin(kubo: FakeKubo, kubo_store: KuboBlockstore) -> None:
    cid = kubo_store.put(METADATA)
    kubo.pins.clear()
    kubo_store.pin(cid)
    [pin] = kubo.calls_to("pin/add")
    assert (pin.option("arg"), pin.option("recursive")) == (cid, "True")
    assert cid in kubo.pins


def test_kubo_reporting_another_cid_is_a_mismatch(
    kubo: FakeKubo, kubo_store: KuboBlockstore
) -> None:
    kubo.misreport_cid = True
    with pytest.raises(CidMismatch) as caught:
        kubo_store.put(METADATA)
    assert caught.value.expected == compute_cid(METADATA)
    assert caught.value.actual == compute_cid(METADATA + b"\n")


def test_kubo_bytes_that_do_not_hash_to_the_cid_are_corrupt(
    kubo: FakeKubo, kubo_store: KuboBlockstore
) -> None:
    cid = kubo_store.put(METADATA)
    kubo.corrupt_cat = True
    with pytest.raises(CorruptContent, match=cid):
        kubo_store.get(cid)


def test_kubo_node_version_works_past_the_clients_version_ceiling(
    kubo_store: KuboBlockstore,
) -> None:
    assert kubo_store.node_version() == KUBO_VERSION


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("operation", ["put", "get", "has", "pin", "node_version"])
def test_kubo_unreachable_node_is_unavailable(operation: str) -> None:
    address = f"/ip4/127.0.0.1/tcp/{_closed_port()}/http"
    store = KuboBlockstore(address, timeout=5)
    call = {
        "put": lambda: store.put(METADATA),
        "get": lambda: store.get(EMPTY_FILE_CID),
        "has": lambda: store.has(EMPTY_FILE_CID),
        "pin": lambda: store.pin(EMPTY_FILE_CID),
        "node_version": store.node_version,
    }[operation]
    with pytest.raises(IpfsUnavailable) as caught:
        call()
    assert caught.value.endpoint == address


def test_kubo_rejects_an_address_that_is_not_a_multiaddr() -> None:
    with pytest.raises(ValueError, match="multiaddr"):
        KuboBlockstore("http://localhost:5001")


# --- factory -------------------------------------------------------------------------------


def test_make_blockstore_is_local_without_a_kubo_api(tmp_path: Path) -> None:
    assert isinstance(make_blockstore(tmp_path, None), LocalBlockstore)
    assert isinstance(make_blockstore(tmp_path, ""), LocalBlockstore)


def test_make_blockstore_uses_kubo_when_configured(tmp_path: Path, kubo: FakeKubo) -> None:
    store = make_blockstore(tmp_path, kubo.multiaddr)
    assert isinstance(store, KuboBlockstore)
    assert store.get(store.put(METADATA)) == METADATA
    store.close()
    assert not any(tmp_path.iterdir())
