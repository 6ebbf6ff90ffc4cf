"""Query-parameter input: what DRF would read as absent is a bad value here.

DRF reads ``?type=`` (an empty query value) as "not given" for an optional
field, so a filter sent empty silently matched everything. A parameter the
client sent must be valid, as the OpenAPI schema says (an enum value, a UUID).
"""

from rest_framework import serializers


class QueryInput(serializers.Serializer):
    def to_internal_value(self, data):
        blank = {name: ["May not be blank."] for name in self.fields if hasattr(data, "get") and data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)
