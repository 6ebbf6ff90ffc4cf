"""``/favicon.ico``: the back office's icon (browsers ask for it on every page; it was a 404).

A 16x16 32-bit ICO drawn here (a white "L" on the header's blue), so there is
no binary file to keep and no static-files lookup for it.
"""

import struct
from functools import cache

from django.http import HttpResponse
from django.views.decorators.http import require_safe

SIZE = 16
_BLUE = (0x5D, 0x4B, 0x26, 0xFF)  # BGRA of #264b5d, the admin header
_WHITE = (0xFF, 0xFF, 0xFF, 0xFF)
_CLEAR = (0, 0, 0, 0)


def _pixel(x: int, y: int) -> tuple:
    """Colour at (x, y), y from the top: rounded corners, and an L from (5,3) down to (11,12)."""
    corner = min(x, SIZE - 1 - x) + min(y, SIZE - 1 - y)
    if corner < 2 and min(x, SIZE - 1 - x) < 2 and min(y, SIZE - 1 - y) < 2:
        return _CLEAR
    if (5 <= x <= 6 and 3 <= y <= 12) or (5 <= x <= 11 and 11 <= y <= 12):
        return _WHITE
    return _BLUE


@cache
def favicon_bytes() -> bytes:
    rows = b"".join(bytes(sum((_pixel(x, y) for x in range(SIZE)), ())) for y in range(SIZE - 1, -1, -1))  # bottom-up
    mask = b"\x00" * (4 * SIZE)  # AND mask: all opaque (the alpha channel decides), rows padded to 32 bits
    header = struct.pack("<IiiHHIIiiII", 40, SIZE, SIZE * 2, 1, 32, 0, len(rows) + len(mask), 0, 0, 0, 0)
    image = header + rows + mask
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(image), 22) + image


@require_safe
def favicon(request):
    response = HttpResponse(favicon_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response
