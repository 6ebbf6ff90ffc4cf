"""The JSON request parser: UTF-8 only, bounded nesting, every failure a 400.

DRF's ``JSONParser`` has two holes a client can reach:
- it decodes with whatever codec the Content-Type's ``charset`` names, so
  ``charset=rot13`` crashes it (500) and ``charset=bz2_codec`` inflates a
  64 KiB body into as much memory as the client likes;
- ``json`` raises RecursionError, not ValueError, on deeply nested input
  (``[[[[...``), which escaped as a 500.

JSON exchanged between systems is UTF-8 (RFC 8259), and no LedgerX body nests
more than two levels, so the charset parameter is ignored, nesting is capped at
``MAX_DEPTH`` and both answer 400 ``validation_error`` ("Malformed JSON body.")
at parse time, before the view reads a field. ``json_loads`` is the same decoder
for other client-supplied JSON (the transaction list's cursors).
"""

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.utils.json import strict_constant

MAX_DEPTH = 32


def _deeper_than(value: Any, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:  # iterative: the check itself must not recurse on client input
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def json_loads(data: bytes | str) -> Any:
    """Decode client JSON: UTF-8, no NaN/Infinity, at most MAX_DEPTH levels. Raises ValueError only."""
    try:
        value = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data, parse_constant=strict_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if _deeper_than(value, MAX_DEPTH):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return value


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json_loads(stream.read())
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
