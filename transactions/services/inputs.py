"""The shape of a money request's own fields, checked before any query.

Serializers check the JSON types; these are the limits every caller of the
money services meets (the API, the admin, the batch engine's items, the
demo seeding), so they live once, here.
"""

from django.conf import settings

from ledger.money import amount_valid
from ledgerx.exceptions import ValidationFailed
from ledgerx.text import text_error

METADATA_MAX_KEYS = 20
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
DESCRIPTION_MAX = 500


def metadata_errors(metadata) -> list[str]:
    if not isinstance(metadata, dict):
        return ["Must be an object."]
    errors = []
    if len(metadata) > METADATA_MAX_KEYS:
        errors.append(f"At most {METADATA_MAX_KEYS} keys.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_MAX:
            errors.append(f"Keys are strings of 1 to {METADATA_KEY_MAX} characters.")
            break
        if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX:
            errors.append(f"Values are strings of at most {METADATA_VALUE_MAX} characters.")
            break
        if problem := text_error(key) or text_error(value):
            errors.append(f"Keys and values: {problem}")
            break
    return errors


def input_validate(*, amount, description, metadata) -> None:
    """Raises ValidationFailed with per-field messages; runs no query."""
    fields: dict[str, list[str]] = {}
    if not amount_valid(amount):
        fields["amount"] = [f"Must be an integer number of minor units, 1 to {settings.MAX_AMOUNT}."]
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        fields["description"] = [f"Must be a string of at most {DESCRIPTION_MAX} characters."]
    elif problem := text_error(description):
        fields["description"] = [problem]
    if metadata is not None and (errors := metadata_errors(metadata)):
        fields["metadata"] = errors
    if fields:
        raise ValidationFailed(fields=fields)
