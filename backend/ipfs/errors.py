"""Exceptions raised by the IPFS package.

The hierarchy, one root for the whole domain::

    IpfsError
    ├── InvalidCid          text that is not a CID we can read
    ├── ContentNotFound     a well-formed CID the blockstore does not hold
    ├── CidMismatch         a Kubo node addressed content differently from us
    ├── CorruptContent      stored bytes no longer hash to their CID
    └── IpfsUnavailable     the Kubo node could not be reached or refused

Nothing here knows about HTTP; ``backend.ipfs.router`` maps these to problem+json.
"""

from __future__ import annotations


class IpfsError(Exception):
    """Raised when any IPFS operation fails; the root every other error here derives from."""


class InvalidCid(IpfsError):
    """Raised when a string is not a CIDv0 or a base32 CIDv1 that this package can read."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"{_clip(text)!r} is not a valid CID: {reason}")


class ContentNotFound(IpfsError):
    """Raised when the blockstore holds nothing under a well-formed CID."""

    def __init__(self, cid: str) -> None:
        self.cid = cid
        super().__init__(f"no content stored under {cid}")


class CidMismatch(IpfsError):
    """Raised when a Kubo node reports a different CID than the one computed locally.

    The CID is written on chain as the ticket's ``tokenURI``, so a node that chunks or
    encodes differently (non-default import settings) must be refused, not trusted.
    """

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"IPFS node addressed the content as {actual}, expected {expected}")


class CorruptContent(IpfsError):
    """Raised when stored bytes are read back and no longer hash to the CID they are filed under."""

    def __init__(self, cid: str, detail: str) -> None:
        self.cid = cid
        self.detail = detail
        super().__init__(f"stored content for {cid} failed verification: {detail}")


class IpfsUnavailable(IpfsError):
    """Raised when the Kubo RPC API cannot be reached, times out or refuses a request."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"IPFS node at {endpoint} is unavailable: {reason}")


def _clip(text: str, limit: int = 80) -> str:
    # Keeps a hostile multi-kilobyte path segment out of logs and problem details.
    return text if len(text) <= limit else text[:limit] + "..."
