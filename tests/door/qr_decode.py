"""Reading a QR back, with zxing-cpp (the decoder many phone scanners use)."""

from __future__ import annotations

import zxingcpp
from PIL import Image


def decode_qr(image: Image.Image) -> str | None:
    found = zxingcpp.read_barcodes(image.convert("L"))
    qr = [b for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]
    return qr[0].text if len(qr) == 1 else None
