"""The rules for client text stored in the database: no NUL, no lone surrogate; back-office reasons.

PostgreSQL cannot store U+0000 in ``text`` or ``jsonb``, and a lone surrogate
(U+D800-U+DFFF, which JSON's ``"\\ud800"`` escape decodes to) cannot be encoded
as UTF-8 at all: either one turns an INSERT into a 500. DRF's ``CharField``
refuses both for every string field it parses; this is the same rule, with the
same messages, for text that no ``CharField`` sees (metadata keys and values)
and for services called without the API.
"""


# What ``text_error`` refuses, as a JSON Schema pattern can say it: the NUL (lone surrogates,
# refused too, cannot be named by a pattern).
NO_NUL_PATTERN = "^[^\\u0000]*$"


def text_error(text: str) -> str | None:
    """The message for a character ``text`` may not contain, or None if it is storable."""
    if "\x00" in text:
        return "Null characters are not allowed."
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return f"Surrogate characters are not allowed: U+{ord(char):X}."
    return None


REASON_MAX = 1000


def reason_clean(reason) -> str:
    """The reason every back-office action records: a non-empty string, stripped, storable, at most REASON_MAX.

    Raises ValidationFailed (field ``reason``).
    """
    from ledgerx.exceptions import ValidationFailed

    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed(fields={"reason": ["A non-empty reason is required."]})
    reason = reason.strip()
    error = text_error(reason)
    if error is None and len(reason) > REASON_MAX:
        error = f"Ensure this field has no more than {REASON_MAX} characters."
    if error:
        raise ValidationFailed(fields={"reason": [error]})
    return reason
