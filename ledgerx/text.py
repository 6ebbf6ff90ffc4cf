"""The one rule for client text stored in the database: no NUL, no lone surrogate.

PostgreSQL cannot store U+0000 in ``text`` or ``jsonb``, and a lone surrogate
(U+D800-U+DFFF, which JSON's ``"\\ud800"`` escape decodes to) cannot be encoded
as UTF-8 at all: either one turns an INSERT into a 500. DRF's ``CharField``
refuses both for every string field it parses; this is the same rule, with the
same messages, for text that no ``CharField`` sees (metadata keys and values)
and for services called without the API.
"""


def text_error(text: str) -> str | None:
    """The message for a character ``text`` may not contain, or None if it is storable."""
    if "\x00" in text:
        return "Null characters are not allowed."
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return f"Surrogate characters are not allowed: U+{ord(char):X}."
    return None
