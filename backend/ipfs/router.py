"""``GET /ipfs/{cid}``: a read-only path gateway over the configured blockstore."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Header, Request, Response

from backend.ipfs.blockstore import Blockstore
from backend.ipfs.cid import parse_cid
from backend.ipfs.errors import (
    CidMismatch,
    ContentNotFound,
    CorruptContent,
    InvalidCid,
    IpfsUnavailable,
)
from backend.problems import problem_responses, register_problem

router = APIRouter(tags=["ipfs"])

register_problem(InvalidCid, 400, "invalid-cid", "Invalid CID")
register_problem(ContentNotFound, 404, "content-not-found", "Content not found")
# The blockstore is this gateway's upstream: bytes that fail verification, or a node that
# addresses content differently, are an invalid answer from upstream, not a client error.
register_problem(CorruptContent, 502, "corrupt-content", "Stored content failed verification")
register_problem(CidMismatch, 502, "cid-mismatch", "IPFS node computed a different CID")
register_problem(IpfsUnavailable, 503, "ipfs-unavailable", "IPFS node unavailable")

# JSON's own whitespace, then an object; a cheap gate before parsing anything large.
_JSON_OBJECT_START = re.compile(rb"[ \t\n\r]*\{")

IMMUTABLE = "public, max-age=31536000, immutable"
# Stored content is organizer-supplied; an SVG served from the API origin could otherwise
# run script in it when opened directly.
_CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


@router.get(
    "/ipfs/{cid}",
    response_class=Response,
    responses={
        200: {"description": "The content stored under the CID."},
        304: {"description": "The client's cached copy is current (it always is)."},
        **problem_responses(400, 404),
    },
)
def get_content(
    cid: str,
    request: Request,
    if_none_match: str | None = Header(default=None),
) -> Response:
    """Serve the bytes stored under ``cid``; immutable, so cacheable forever."""
    parse_cid(cid)
    blockstore: Blockstore = request.app.state.blockstore
    headers = {"ETag": f'"{cid}"', "Cache-Control": IMMUTABLE}
    if if_none_match is not None and _etag_matches(if_none_match, cid, blockstore):
        return Response(status_code=304, headers=headers)
    data = blockstore.get(cid)
    return Response(data, media_type=sniff_media_type(data), headers=headers | _CONTENT_HEADERS)


def _etag_matches(if_none_match: str, cid: str, blockstore: Blockstore) -> bool:
    # Content under a CID can never change, so a matching tag needs no read; "*" does need
    # to know the content exists (RFC 9110 section 13.1.2).
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    if "*" in tags:
        return blockstore.has(cid)
    return f'"{cid}"' in tags


def sniff_media_type(data: bytes) -> str:
    if data.startswith(b"<svg"):
        return "image/svg+xml"
    if _is_json_object(data):
        return "application/json"
    return "application/octet-stream"


def _is_json_object(data: bytes) -> bool:
    if not _JSON_OBJECT_START.match(data):
        return False
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, RecursionError):
        return False
