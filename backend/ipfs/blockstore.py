"""Where ticket metadata lives, addressed by the CID ``ipfs add`` gives it.

Two adapters behind one protocol: :class:`LocalBlockstore` (files under a directory, the
embedded profile) and :class:`KuboBlockstore` (a Kubo node over its RPC API). Both compute
the CID locally first, so a CID written on chain never depends on a node being up or
configured the way we assume.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

import ipfshttpclient
import ipfshttpclient.exceptions as kubo_errors

from backend.ipfs.cid import Cid, compute_cid, content_matches_cid, parse_cid
from backend.ipfs.errors import (
    CidMismatch,
    ContentNotFound,
    CorruptContent,
    InvalidCid,
    IpfsUnavailable,
)


class Blockstore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` as a file and return its root CID (``ipfs add`` defaults, CIDv0)."""
        ...

    def get(self, cid: str) -> bytes:
        """Return the whole file stored under ``cid``; raise ContentNotFound if absent."""
        ...

    def has(self, cid: str) -> bool:
        """Whether content is held under ``cid``; a presence check, no verification."""
        ...

    def pin(self, cid: str) -> None:
        """Keep ``cid`` from being garbage collected; raise ContentNotFound if absent."""
        ...


class LocalBlockstore:
    """Whole files under ``root``, one per root CID, verified against that CID on every read.

    Files are named by the CIDv1 base32 form of their root, so names are safe on
    case-insensitive file systems and a request for either rendering of the same root
    (``Qm...`` or ``bafy...``) finds them. They are sharded into directories named by the
    two characters before the last, as Kubo's flatfs does, since the tail of a hash spreads
    evenly and the head of a CID (``bafybei``) does not.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        cid = compute_cid(data)
        path = self._path(parse_cid(cid))
        if not self._holds_intact(path, data):
            _write_atomically(path, data)
        return cid

    def get(self, cid: str) -> bytes:
        parsed = parse_cid(cid)
        path = self._path(parsed)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(cid) from None
        actual = parse_cid(compute_cid(data)).to_v1()
        if actual != parsed.to_v1():
            raise CorruptContent(cid, f"the stored bytes hash to {actual}")
        return data

    def has(self, cid: str) -> bool:
        # Existence only: verifying means hashing the whole file, which get() does anyway.
        return self._path(parse_cid(cid)).is_file()

    def pin(self, cid: str) -> None:
        # Nothing here is ever garbage collected, so pinning only has to check presence.
        if not self.has(cid):
            raise ContentNotFound(cid)

    def _path(self, cid: Cid) -> Path:
        name = cid.to_v1().encode()
        return self._root / name[-3:-1] / name

    @staticmethod
    def _holds_intact(path: Path, data: bytes) -> bool:
        # A put of the same bytes repairs a damaged copy instead of trusting its name.
        try:
            return path.read_bytes() == data
        except FileNotFoundError:
            return False


def _write_atomically(path: Path, data: bytes) -> None:
    # Readers see either no file or the whole file: write aside, fsync, then rename over.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; Windows cannot open a directory to fsync it.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Passed explicitly so a node configured with other Import.* defaults fails the CID check
# loudly instead of silently addressing our content differently.
_KUBO_ADD_OPTIONS: Final[Mapping[str, str]] = {
    "cid-version": "0",
    "raw-leaves": "false",
    "chunker": "size-262144",
    "hash": "sha2-256",
    "pin": "true",
}


class KuboBlockstore:
    """A Kubo node reached over its RPC API with ipfshttpclient.

    Reads run offline by default (``fetch_from_network=False``): this store serves content
    it added and pinned itself, and an online lookup of an unknown CID makes Kubo search
    the network until the request times out, turning a plain 404 into a 503.
    """

    def __init__(
        self, api_multiaddr: str, *, timeout: float = 30.0, fetch_from_network: bool = False
    ) -> None:
        self._endpoint = api_multiaddr
        self._offline = not fetch_from_network
        try:
            # Not ipfshttpclient.connect(): it refuses every Kubo from 0.8 on.
            self._client = ipfshttpclient.Client(api_multiaddr, timeout=timeout)
        except kubo_errors.AddressError as error:
            raise ValueError(f"not a Kubo RPC API multiaddr: {api_multiaddr!r}") from error

    def put(self, data: bytes) -> str:
        expected = compute_cid(data)
        with self._translate_errors():
            reported = self._client.add_bytes(data, opts=_KUBO_ADD_OPTIONS)
        if not isinstance(reported, str) or not _same_content(reported, expected):
            raise CidMismatch(expected, str(reported))
        return expected

    def get(self, cid: str) -> bytes:
        parsed = parse_cid(cid)
        with self._translate_errors(cid):
            data = self._client.cat(cid, offline=self._offline)
        if not isinstance(data, bytes):
            raise IpfsUnavailable(self._endpoint, f"cat returned {type(data).__name__}")
        if not content_matches_cid(data, parsed):
            raise CorruptContent(cid, "the bytes the node returned do not hash to this CID")
        return data

    def has(self, cid: str) -> bool:
        parse_cid(cid)
        try:
            with self._translate_errors(cid):
                self._client.block.stat(cid, offline=True)
        except ContentNotFound:
            return False
        return True

    def pin(self, cid: str) -> None:
        parse_cid(cid)
        with self._translate_errors(cid):
            self._client.pin.add(cid)

    def node_version(self) -> str:
        """The Kubo version string; a cheap liveness probe for health checks."""
        with self._translate_errors():
            info: Any = self._client.version()
        return str(info["Version"])

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def _translate_errors(self, cid: str | None = None) -> Iterator[None]:
        try:
            with _urllib3_strict_warning_silenced():
                yield
        except kubo_errors.ErrorResponse as error:
            if cid is not None and _means_not_found(str(error)):
                raise ContentNotFound(cid) from error
            raise IpfsUnavailable(self._endpoint, f"the node refused: {error}") from error
        except kubo_errors.Error as error:
            # Connection, timeout, protocol and decoding failures alike: no usable answer.
            raise IpfsUnavailable(self._endpoint, str(error)) from error


@contextmanager
def _urllib3_strict_warning_silenced() -> Iterator[None]:
    # ipfshttpclient 0.7.0 passes strict=True to urllib3 2.x, which warns on every new
    # connection; nothing on our side can act on it. catch_warnings swaps process-global
    # state, so concurrent calls may briefly leave this one narrow filter installed.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning
        )
        yield


def _means_not_found(message: str) -> bool:
    # Kubo has no error codes for this; these are the phrasings its releases have used.
    lowered = message.lower()
    return "not found" in lowered or "could not find" in lowered


def _same_content(reported: str, expected: str) -> bool:
    try:
        # A node set to print base32 reports the v1 rendering of the same root; that is fine.
        return parse_cid(reported).to_v1() == parse_cid(expected).to_v1()
    except InvalidCid:
        return False


def make_blockstore(local_dir: Path, kubo_api: str | None) -> Blockstore:
    """The Kubo adapter when an API address is configured, the local directory otherwise."""
    if kubo_api:
        return KuboBlockstore(kubo_api)
    return LocalBlockstore(local_dir)
