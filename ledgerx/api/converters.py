"""``<uuid_ci:...>``: a UUID path segment in upper, lower or mixed case.

Django's ``<uuid:...>`` matches lowercase hex only, so an id a client
upper-cased (or copied from a system that prints UUIDs that way) was a 404 in
a path while the same id was accepted in a JSON body or a query string (DRF's
UUIDField reads either case). Every URLconf with an id in its path uses this
converter and imports this module, which registers it; Python runs a module
once, so it is registered once.
"""

import uuid

from django.urls import register_converter


class CaseInsensitiveUUIDConverter:
    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(CaseInsensitiveUUIDConverter, "uuid_ci")
