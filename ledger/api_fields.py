"""Strict DRF fields and the page shape for the money APIs.

DRF's IntegerField accepts "1050" and 10.0, its CharField accepts 12 and its
BooleanField accepts "yes"; money input must be exactly the JSON type the
contract names, so these fields check the type and never coerce.
"""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": settings.MAX_AMOUNT})
class StrictAmountField(serializers.Field):
    """A JSON integer of minor units, 1..settings.MAX_AMOUNT. No floats, strings, booleans or null."""

    default_error_messages = {
        "invalid": "Must be a JSON integer number of minor units (e.g. 1050 for 10.50).",
        "range": "Must be greater than 0 and at most {max}.",
    }

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        if not 0 < data <= settings.MAX_AMOUNT:
            self.fail("range", max=settings.MAX_AMOUNT)
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class StrictCharField(serializers.CharField):
    """A JSON string only (DRF's CharField would turn 12 into "12")."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanField(serializers.Field):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if type(data) is not bool:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return bool(value)


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The schema of a cursor-paginated list of ``item``: {results, next, previous}."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "results": item(many=True),
            "next": serializers.URLField(allow_null=True, help_text="The next (older) page, or null."),
            "previous": serializers.URLField(allow_null=True, help_text="The previous (newer) page, or null."),
        },
    )
