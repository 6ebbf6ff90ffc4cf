"""Cursor pagination, newest first, per the contract: {results, next, previous}.

DRF's CursorPagination hands the position it decodes from ``?cursor=`` to the
ORM as given, so a crafted cursor (``p=notadate`` on a datetime ordering,
``p=abc`` on an integer id, an offset PostgreSQL refuses) was a 500 from the
query. Here the position must parse as the ordering field's type and is
replaced by its canonical text (what DRF itself writes into cursors: a UTC
timestamp, a decimal integer, a lowercase UUID). Any cursor that does not
decode to a valid position, here or in the transaction list's keyset cursors,
gets one answer: ``invalid_cursor()``, a 404 ``not_found``.
"""

from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import exceptions as drf
from rest_framework.pagination import CursorPagination

from ledgerx.api.timestamps import timestamp_parse
from ledgerx.exceptions import NotFound, ValidationFailed

_BIGINT = range(-(2**63), 2**63)
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200


def page_size_parse(raw: str | None) -> int:
    """``?page_size=``: absent -> the default; anything but an integer 1..200 -> 400 (never silently the default)."""
    if raw is None:
        return PAGE_SIZE_DEFAULT
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= PAGE_SIZE_MAX):
        raise ValidationFailed(fields={"page_size": [f"An integer from 1 to {PAGE_SIZE_MAX}."]})
    return int(raw)


def invalid_cursor() -> NotFound:
    """The one answer to a cursor that does not decode to a valid position."""
    return NotFound("Invalid cursor.")


def _position_canonical(field: models.Field, raw: str) -> str | None:
    """``raw`` as the text of a valid value of ``field``, or None."""
    if isinstance(field, models.DateTimeField):
        value = timestamp_parse(raw)
    else:
        try:
            value = field.to_python(raw)
        except ValidationError:
            return None
        if isinstance(value, int) and value not in _BIGINT:
            return None
    return None if value is None else str(value)


class NewestFirstCursorPagination(CursorPagination):
    page_size = PAGE_SIZE_DEFAULT
    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE_MAX
    ordering = "-created_at"

    def get_page_size(self, request):
        return page_size_parse(request.query_params.get(self.page_size_query_param))

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except drf.NotFound:
            raise invalid_cursor() from None
        if cursor is None or cursor.position is None:
            return cursor
        name = self.ordering[0].lstrip("-")
        field = self._model._meta.pk if name == "pk" else self._model._meta.get_field(name)
        position = _position_canonical(field, cursor.position)
        if position is None:
            raise invalid_cursor()
        return cursor._replace(position=position)
