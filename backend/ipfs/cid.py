"""Content identifiers computed exactly as Kubo's ``ipfs add`` computes them, without a node.

Kubo's default import, reproduced here byte for byte (boxo's UnixFS importer):

* fixed-size chunks of 262144 bytes (``size-262144``); an empty chunk is never produced;
* balanced layout, at most 174 links per node; a file of at most one chunk is its own root;
* dag-pb nodes carrying UnixFS ``Data`` protobufs, or raw leaves (codec 0x55) when enabled;
* sha2-256 multihashes.

CID version and raw leaves follow Kubo's ``UnixfsAddOptions`` and go-cid's builders:

* ``cid_version=0`` (default): raw leaves off, every block is a CIDv0 ``Qm...``.
* ``cid_version=1``: raw leaves default to on. Every dag-pb node is CIDv1 and links to its
  children *by CIDv1*, so a multi-chunk v1 DAG is a different DAG from the v0 one, not the
  v0 root re-rendered. (``Cid.to_v1`` gives the re-rendering, which is what ``ipfs cid
  base32`` and Debian's ``ipfs_cid`` tool print.)
* ``cid_version=0, raw_leaves=True``: dag-pb nodes stay CIDv0, but a raw block can't be a
  CIDv0 (``Prefix.WithCodec`` bumps it to v1), so leaves are CIDv1 raw. A file of at most
  one chunk therefore gets a CIDv1 ``bafkrei...`` root; a larger one keeps a ``Qm...`` root
  whose links point at v1 raw leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from backend.ipfs.errors import InvalidCid

CHUNK_SIZE = 262_144
MAX_LINKS = 174

DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
_SHA2_256_LENGTH = 32

# Longest text worth decoding: a CIDv1 with a 64-byte digest is ~113 characters.
_MAX_CID_TEXT = 256

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: value for value, char in enumerate(_B58_ALPHABET)}
_B32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_B32_INDEX = {char: value for value, char in enumerate(_B32_ALPHABET)}

# UnixFS Data.Type = File, the first field of every node this importer writes.
_UNIXFS_FILE = b"\x08\x02"


# --- unsigned varints and the three protobuf field shapes dag-pb needs --------------------


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as an unsigned LEB128 varint (protobuf and multiformats)."""
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf: bytes, pos: int = 0) -> tuple[int, int]:
    """Decode a minimally encoded multiformats varint at ``pos``; return (value, next position)."""
    value = 0
    for index in range(9):  # the multiformats spec caps varints at 9 bytes (63 bits)
        if pos + index >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if byte == 0 and index > 0:
                raise ValueError("varint is not minimally encoded")
            return value, pos + index + 1
    raise ValueError("varint longer than 9 bytes")


def _pb_bytes(field: int, payload: bytes) -> bytes:
    return encode_varint(field << 3 | 2) + encode_varint(len(payload)) + payload


def _pb_uint(field: int, value: int) -> bytes:
    return encode_varint(field << 3) + encode_varint(value)


# --- base58btc (CIDv0) and RFC 4648 base32, lowercase, unpadded (CIDv1 multibase "b") ----


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        value = _B58_INDEX.get(char)
        if value is None:
            raise ValueError(f"{char!r} is not a base58btc character")
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def b32encode(data: bytes) -> str:
    bits = len(data) * 8
    padding = -bits % 5
    number = int.from_bytes(data, "big") << padding
    count = (bits + padding) // 5
    return "".join(_B32_ALPHABET[(number >> (5 * (count - 1 - i))) & 31] for i in range(count))


def b32decode(text: str) -> bytes:
    number = 0
    for char in text:
        value = _B32_INDEX.get(char)
        if value is None:
            raise ValueError(f"{char!r} is not a lowercase base32 character")
        number = number << 5 | value
    bits = len(text) * 5
    spare = bits % 8
    # Unpadded base32 leaves at most 4 spare bits, all zero; anything else is not canonical.
    if spare >= 5 or number & ((1 << spare) - 1):
        raise ValueError("base32 text has a non-canonical length or trailing bits")
    return (number >> spare).to_bytes(bits // 8, "big")


# --- CIDs -----------------------------------------------------------------------------------


def sha256_multihash(data: bytes) -> bytes:
    return bytes((SHA2_256, _SHA2_256_LENGTH)) + hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Cid:
    """A parsed CID: version, content codec and the binary multihash."""

    version: int
    codec: int
    multihash: bytes

    @property
    def hash_code(self) -> int:
        return decode_varint(self.multihash)[0]

    @property
    def digest(self) -> bytes:
        _, pos = decode_varint(self.multihash)
        _, pos = decode_varint(self.multihash, pos)
        return self.multihash[pos:]

    def to_bytes(self) -> bytes:
        """The binary form that dag-pb links carry."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def encode(self) -> str:
        """The text form Kubo prints: base58btc for v0, multibase base32 for v1."""
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + b32encode(self.to_bytes())

    def to_v1(self) -> Cid:
        """The same content as CIDv1; for a v0 CID this is what ``ipfs cid base32`` prints."""
        return Cid(1, self.codec, self.multihash)

    def __str__(self) -> str:
        return self.encode()


def parse_cid(text: str) -> Cid:
    """Parse a CIDv0 (``Qm...``) or a base32 CIDv1 (``b...``); raise InvalidCid otherwise."""
    if len(text) > _MAX_CID_TEXT:
        raise InvalidCid(text, f"longer than {_MAX_CID_TEXT} characters")
    if len(text) == 46 and text.startswith("Qm"):
        cid = _parse_v0(text)
    elif text.startswith("b"):
        cid = _parse_v1(text)
    else:
        raise InvalidCid(text, "expected a CIDv0 (Qm...) or a base32 CIDv1 (b...)")
    if cid.encode() != text:
        raise InvalidCid(text, "not in canonical form")
    return cid


def is_valid_cid(text: str) -> bool:
    try:
        parse_cid(text)
    except InvalidCid:
        return False
    return True


def _parse_v0(text: str) -> Cid:
    try:
        multihash = b58decode(text)
    except ValueError as error:
        raise InvalidCid(text, str(error)) from None
    if len(multihash) != 34 or multihash[:2] != bytes((SHA2_256, _SHA2_256_LENGTH)):
        raise InvalidCid(text, "a CIDv0 must be a sha2-256 multihash")
    return Cid(0, DAG_PB, multihash)


def _parse_v1(text: str) -> Cid:
    try:
        raw = b32decode(text[1:])
        version, pos = decode_varint(raw)
        codec, pos = decode_varint(raw, pos)
        multihash = raw[pos:]
        _, mh_pos = decode_varint(multihash)
        length, mh_pos = decode_varint(multihash, mh_pos)
    except ValueError as error:
        raise InvalidCid(text, str(error)) from None
    if version != 1:
        raise InvalidCid(text, f"unsupported CID version {version}")
    if len(multihash) - mh_pos != length:
        raise InvalidCid(text, "multihash digest length does not match its header")
    return Cid(1, codec, multihash)


# --- the balanced UnixFS importer ---------------------------------------------------------

BlockSink = Callable[[Cid, bytes], None]


class SupportsRead(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Built:
    cid: Cid
    tsize: int  # PBLink.Tsize: serialized size of this block plus everything below it
    filesize: int  # file bytes under this node: its UnixFS blocksizes entry in the parent


@dataclass(frozen=True, slots=True)
class Dag:
    """Every block of an imported file, children before parents, the root last."""

    root: str
    blocks: dict[str, bytes]
    cumulative_size: int  # what Kubo reports as "Size" for the added file


class _BalancedBuilder:
    """Mirror of boxo's ``balanced.Layout``: grow the root one level at a time, left-filled."""

    def __init__(
        self, chunks: Iterable[bytes], *, cid_version: int, raw_leaves: bool, sink: BlockSink | None
    ) -> None:
        self._chunks = iter(chunks)
        self._pending = next(self._chunks, None)
        self._cid_version = cid_version
        self._raw_leaves = raw_leaves
        self._sink = sink

    def build(self) -> _Built:
        if self._pending is None:
            return self._leaf(b"")
        root = self._leaf(self._take())
        depth = 1
        while self._pending is not None:
            root = self._fill([root], depth)
            depth += 1
        return root

    def _take(self) -> bytes:
        chunk = self._pending
        assert chunk is not None
        self._pending = next(self._chunks, None)
        return chunk

    def _fill(self, children: list[_Built], depth: int) -> _Built:
        while len(children) < MAX_LINKS and self._pending is not None:
            child = self._leaf(self._take()) if depth == 1 else self._fill([], depth - 1)
            children.append(child)
        return self._internal(children)

    def _leaf(self, chunk: bytes) -> _Built:
        if self._raw_leaves:
            cid = Cid(1, RAW, sha256_multihash(chunk))
            self._emit(cid, (chunk,))
            return _Built(cid, len(chunk), len(chunk))
        parts = _dag_pb_leaf_parts(chunk)
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        cid = self._dag_pb_cid(digest.digest())
        self._emit(cid, parts)
        return _Built(cid, sum(map(len, parts)), len(chunk))

    def _internal(self, children: Sequence[_Built]) -> _Built:
        block = _dag_pb_internal_block(children)
        cid = self._dag_pb_cid(hashlib.sha256(block).digest())
        self._emit(cid, (block,))
        return _Built(cid, len(block) + sum(c.tsize for c in children), _filesize(children))

    def _dag_pb_cid(self, digest: bytes) -> Cid:
        return Cid(self._cid_version, DAG_PB, bytes((SHA2_256, _SHA2_256_LENGTH)) + digest)

    def _emit(self, cid: Cid, parts: Sequence[bytes]) -> None:
        if self._sink is not None:
            self._sink(cid, b"".join(parts))


def _dag_pb_leaf_parts(chunk: bytes) -> tuple[bytes, bytes, bytes]:
    # Split around the chunk so hashing needs no copy of it. go-unixfs leaves Data unset for
    # the empty file (nil slice) and always writes filesize.
    size = len(chunk)
    head = _UNIXFS_FILE + (encode_varint(2 << 3 | 2) + encode_varint(size) if size else b"")
    tail = _pb_uint(3, size)
    unixfs_length = len(head) + size + len(tail)
    return encode_varint(1 << 3 | 2) + encode_varint(unixfs_length) + head, chunk, tail


def _dag_pb_internal_block(children: Sequence[_Built]) -> bytes:
    unixfs = (
        _UNIXFS_FILE
        + _pb_uint(3, _filesize(children))
        + b"".join(_pb_uint(4, child.filesize) for child in children)
    )
    # dag-pb canonical order puts Links (field 2) before Data (field 1).
    links = b"".join(_pb_bytes(2, _dag_pb_link(child)) for child in children)
    return links + _pb_bytes(1, unixfs)


def _dag_pb_link(child: _Built) -> bytes:
    # go-merkledag always writes Name, even the empty one the importer uses.
    return _pb_bytes(1, child.cid.to_bytes()) + _pb_bytes(2, b"") + _pb_uint(3, child.tsize)


def _filesize(children: Sequence[_Built]) -> int:
    return sum(child.filesize for child in children)


def _split(data: bytes) -> Iterator[bytes]:
    return (data[offset : offset + CHUNK_SIZE] for offset in range(0, len(data), CHUNK_SIZE))


def _read_chunks(stream: SupportsRead) -> Iterator[bytes]:
    # Like Kubo's io.ReadFull-based splitter: chunk boundaries never depend on read sizes.
    while True:
        parts: list[bytes] = []
        missing = CHUNK_SIZE
        while missing:
            part = stream.read(missing)
            if not part:
                break
            parts.append(part)
            missing -= len(part)
        if parts:
            yield b"".join(parts)
        if missing:
            return


def _resolve_raw_leaves(cid_version: int, raw_leaves: bool | None) -> bool:
    if cid_version not in (0, 1):
        raise ValueError(f"cid_version must be 0 or 1, got {cid_version}")
    return cid_version == 1 if raw_leaves is None else raw_leaves


def _import(
    chunks: Iterable[bytes], cid_version: int, raw_leaves: bool | None, sink: BlockSink | None
) -> _Built:
    builder = _BalancedBuilder(
        chunks,
        cid_version=cid_version,
        raw_leaves=_resolve_raw_leaves(cid_version, raw_leaves),
        sink=sink,
    )
    return builder.build()


def compute_cid(data: bytes, *, cid_version: int = 0, raw_leaves: bool | None = None) -> str:
    """The CID ``ipfs add [--cid-version N] [--raw-leaves=B]`` prints for ``data``."""
    return _import(_split(data), cid_version, raw_leaves, None).cid.encode()


def compute_cid_stream(
    stream: SupportsRead, *, cid_version: int = 0, raw_leaves: bool | None = None
) -> str:
    """As :func:`compute_cid`, reading ``stream`` to EOF one chunk at a time."""
    return _import(_read_chunks(stream), cid_version, raw_leaves, None).cid.encode()


def build_dag(data: bytes, *, cid_version: int = 0, raw_leaves: bool | None = None) -> Dag:
    """Every block ``ipfs add`` would store for ``data``, keyed by CID text."""
    blocks: dict[str, bytes] = {}

    def keep(cid: Cid, block: bytes) -> None:
        blocks.setdefault(cid.encode(), block)

    root = _import(_split(data), cid_version, raw_leaves, keep)
    return Dag(root=root.cid.encode(), blocks=blocks, cumulative_size=root.tsize)


def content_matches_cid(data: bytes, cid: Cid) -> bool:
    """Whether ``data`` hashes to ``cid`` under any import setting Kubo's add defaults allow.

    A CID alone does not say whether it was imported with v0 or v1 links or raw leaves, so
    each dag-pb shape is tried; a raw CID is a single block hashed as is.
    """
    if cid.hash_code != SHA2_256 or len(cid.digest) != _SHA2_256_LENGTH:
        return False
    if cid.codec == RAW:
        return hashlib.sha256(data).digest() == cid.digest
    if cid.codec != DAG_PB:
        return False
    for link_version, raw_leaves in ((0, False), (1, False), (0, True), (1, True)):
        root = _import(_split(data), link_version, raw_leaves, None).cid
        if root.codec == DAG_PB and root.multihash == cid.multihash:
            return True
    return False
