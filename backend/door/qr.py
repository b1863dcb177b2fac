"""QR images of entry codes (segno: pure Python, PNG and SVG without an imaging library)."""

from __future__ import annotations

import base64
import io

import segno


def _qr(text: str) -> segno.QRCode:
    # Error correction M: readable off a cracked or dimmed phone screen, still a small symbol.
    return segno.make_qr(text, error="m")


def svg(text: str) -> str:
    buffer = io.BytesIO()
    _qr(text).save(buffer, kind="svg", scale=8, border=4, xmldecl=False)
    return buffer.getvalue().decode()


def png(text: str) -> bytes:
    buffer = io.BytesIO()
    _qr(text).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


def png_base64(text: str) -> str:
    return base64.b64encode(png(text)).decode()
