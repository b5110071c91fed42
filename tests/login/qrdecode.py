"""A small QR decoder for tests, written from ISO/IEC 18004 and independent of the ``qrcode`` encoder.

The tests used to compare a rendered QR code with ``qrcode``'s own module matrix, which would agree with an
encoder bug. No QR decoder is installed (and none is added as a dependency), so this one reads a module matrix
the way a scanner does: the format information (error-correction level and mask, checked against every
valid code word), unmasking, the zigzag read of the codewords around the function patterns, de-interleaving
of the blocks, and the segments (numeric, alphanumeric, byte). Versions 1-10, levels L and M: what a login
URL needs. Error correction is not applied: a clean rendering has no errors to correct.

``modules_from_png`` reads a PNG back into modules without knowing the module size or the quiet zone.
"""

from __future__ import annotations

import io

from PIL import Image

Matrix = list[list[bool]]  # True = dark; [row][column]

#: (count, data codewords) per block, by (level, version): ISO/IEC 18004 table 9.
BLOCKS: dict[tuple[str, int], list[tuple[int, int]]] = {
    ("L", 1): [(1, 19)],
    ("L", 2): [(1, 34)],
    ("L", 3): [(1, 55)],
    ("L", 4): [(1, 80)],
    ("L", 5): [(1, 108)],
    ("L", 6): [(2, 68)],
    ("L", 7): [(2, 78)],
    ("L", 8): [(2, 97)],
    ("L", 9): [(2, 116)],
    ("L", 10): [(2, 68), (2, 69)],
    ("M", 1): [(1, 16)],
    ("M", 2): [(1, 28)],
    ("M", 3): [(1, 44)],
    ("M", 4): [(2, 32)],
    ("M", 5): [(2, 43)],
    ("M", 6): [(4, 27)],
    ("M", 7): [(4, 31)],
    ("M", 8): [(2, 38), (2, 39)],
    ("M", 9): [(3, 36), (2, 37)],
    ("M", 10): [(4, 43), (1, 44)],
}
#: Centres of the alignment patterns by version (annex E).
ALIGNMENT = {1: [], 2: [6, 18], 3: [6, 22], 4: [6, 26], 5: [6, 30], 6: [6, 34], 7: [6, 22, 38], 8: [6, 24, 42]}
ALIGNMENT |= {9: [6, 26, 46], 10: [6, 28, 50]}
#: The two format bits of each error-correction level.
LEVEL_BITS = {"L": 0b01, "M": 0b00, "Q": 0b11, "H": 0b10}
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

MASKS = [
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
]


def modules_from_png(png: bytes) -> Matrix:
    """The modules of a black-on-white QR PNG: the module size is the top-left finder's width / 7."""
    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    dark = [[image.getpixel((x, y)) < 128 for x in range(width)] for y in range(height)]
    top = next(y for y in range(height) if any(dark[y]))
    left = dark[top].index(True)
    run = 0
    while left + run < width and dark[top][left + run]:
        run += 1
    assert run % 7 == 0, f"the finder pattern is {run} px wide, not 7 modules"
    box = run // 7
    right = width - 1 - dark[top][::-1].index(True)
    size = (right - left + 1) // box
    half = box // 2
    return [[dark[top + r * box + half][left + c * box + half] for c in range(size)] for r in range(size)]


def strip_quiet_zone(matrix: Matrix) -> Matrix:
    matrix = [row for row in matrix if row]  # (a rendering may end with an empty line)
    rows = [r for r, row in enumerate(matrix) if any(row)]
    cols = [c for c in range(len(matrix[0])) if any(row[c] for row in matrix)]
    return [row[cols[0] : cols[-1] + 1] for row in matrix[rows[0] : rows[-1] + 1]]


def _format_word(level: str, mask: int) -> int:
    data = LEVEL_BITS[level] << 3 | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return (data << 10 | rem) ^ 0x5412


def _format_positions(size: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(row, column) of format bits 0..14 in each of the two copies."""
    first = [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)] + [(8, 14 - i) for i in range(9, 15)]
    second = [(8, size - 1 - i) for i in range(8)] + [(size - 15 + i, 8) for i in range(8, 15)]
    return first, second


def read_format(matrix: Matrix) -> tuple[str, int]:
    """The error-correction level and mask whose format word both copies show (at most 3 bits off)."""
    size = len(matrix)
    copies = _format_positions(size)
    best: tuple[int, str, int] | None = None
    for level in LEVEL_BITS:
        for mask in range(8):
            word = _format_word(level, mask)
            for positions in copies:
                errors = sum(matrix[r][c] != bool(word >> i & 1) for i, (r, c) in enumerate(positions))
                if best is None or errors < best[0]:
                    best = (errors, level, mask)
    assert best is not None and best[0] <= 3, "no valid format information"
    return best[1], best[2]


def _function_modules(size: int, version: int) -> Matrix:
    is_fn = [[False] * size for _ in range(size)]

    def mark(r0: int, c0: int, h: int, w: int) -> None:
        for r in range(max(r0, 0), min(r0 + h, size)):
            for c in range(max(c0, 0), min(c0 + w, size)):
                is_fn[r][c] = True

    mark(0, 0, 9, 9)  # finder, separator, format
    mark(0, size - 8, 9, 8)
    mark(size - 8, 0, 8, 9)  # (the dark module is in here too)
    mark(6, 0, 1, size)  # timing patterns
    mark(0, 6, size, 1)
    centres = ALIGNMENT[version]
    for r in centres:
        for c in centres:
            if (r, c) in ((6, 6), (6, centres[-1]), (centres[-1], 6)):
                continue  # those would overlap the finders
            mark(r - 2, c - 2, 5, 5)
    if version >= 7:
        mark(0, size - 11, 6, 3)
        mark(size - 11, 0, 3, 6)
    return is_fn


def _codewords(matrix: Matrix, version: int, mask: int) -> list[int]:
    size = len(matrix)
    is_fn = _function_modules(size, version)
    bits: list[bool] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5  # the vertical timing pattern is skipped as a whole column
        upward = ((right + 1) & 2) == 0
        for vert in range(size):
            r = size - 1 - vert if upward else vert
            for c in (right, right - 1):
                if not is_fn[r][c]:
                    bits.append(matrix[r][c] != MASKS[mask](r, c))
        right -= 2
    return [int("".join("1" if b else "0" for b in bits[i : i + 8]), 2) for i in range(0, len(bits) - 7, 8)]


def _data_codewords(words: list[int], level: str, version: int) -> list[int]:
    blocks = [n for count, n in BLOCKS[(level, version)] for _ in range(count)]
    data: list[list[int]] = [[] for _ in blocks]
    pos = 0
    for i in range(max(blocks)):
        for b, n in enumerate(blocks):
            if i < n:
                data[b].append(words[pos])
                pos += 1
    return [w for block in data for w in block]


def _segments(data: list[int], version: int) -> str:
    bits = "".join(f"{w:08b}" for w in data)
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        value = int(bits[pos : pos + n], 2)
        pos += n
        return value

    out = []
    small = version <= 9
    while pos + 4 <= len(bits):
        mode = take(4)
        if mode == 0:
            break  # terminator
        if mode == 0b0100:
            count = take(8 if small else 16)
            out.append(bytes(take(8) for _ in range(count)).decode("utf-8"))
        elif mode == 0b0010:
            count = take(9 if small else 11)
            chars = []
            for _ in range(count // 2):
                v = take(11)
                chars += [ALNUM[v // 45], ALNUM[v % 45]]
            if count % 2:
                chars.append(ALNUM[take(6)])
            out.append("".join(chars))
        elif mode == 0b0001:
            count = take(10 if small else 12)
            digits = ""
            while count >= 3:
                digits += f"{take(10):03d}"
                count -= 3
            if count:
                digits += f"{take(7 if count == 2 else 4):0{count}d}"
            out.append(digits)
        else:
            raise AssertionError(f"unexpected segment mode {mode:04b}")
    return "".join(out)


def decode(matrix: Matrix) -> str:
    """The text a QR code's modules (quiet zone or not) encode."""
    matrix = strip_quiet_zone(matrix)
    size = len(matrix)
    assert size == len(matrix[0]) and (size - 17) % 4 == 0, f"not a QR code: {size} modules wide"
    version = (size - 17) // 4
    level, mask = read_format(matrix)
    assert (level, version) in BLOCKS, f"version {version}-{level} is outside this decoder's table"
    words = _codewords(matrix, version, mask)
    return _segments(_data_codewords(words, level, version), version)
