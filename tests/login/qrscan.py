"""Reading QR codes back as a scanner does, with zxing-cpp (a maintained decoder from the package index, in
the test extra): independent of the ``qrcode`` encoder, so a rendering bug cannot agree with itself."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image

Matrix = list[list[bool]]  # True = dark; [row][column]

#: Pixels per module and light modules around a matrix drawn for the decoder (4 is the QR quiet zone).
SCALE = 4
QUIET = 4


def _read(image: Image.Image) -> str:
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    if len(found) != 1:
        raise AssertionError(f"expected one QR code in the image, the decoder found {len(found)}")
    return str(found[0].text)


def decode_png(png: bytes) -> str:
    """The text of the one QR code in a PNG."""
    with Image.open(io.BytesIO(png)) as image:
        return _read(image.convert("L"))


def decode_modules(matrix: Matrix) -> str:
    """The text of a QR code given as rows of modules (read from text blocks, say), drawn black on white; rows
    of light padding around the code are fine."""
    if not matrix or not any(any(row) for row in matrix):
        raise AssertionError("no dark module: not a QR code")
    width, height = max(len(row) for row in matrix) + 2 * QUIET, len(matrix) + 2 * QUIET
    image = Image.new("L", (width, height), 255)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                image.putpixel((x + QUIET, y + QUIET), 0)
    return _read(image.resize((width * SCALE, height * SCALE), Image.Resampling.NEAREST))
