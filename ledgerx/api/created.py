"""201 answers: the body and a ``Location`` naming what was created (RFC 9110)."""

from django.urls import reverse
from rest_framework.response import Response


def created(body: dict, view_name: str, *, by_id: bool = True, headers: dict | None = None) -> Response:
    """A 201 of ``body`` whose ``Location`` is ``view_name``'s path (for ``body["id"]`` when ``by_id``)."""
    location = reverse(view_name, args=[body["id"]]) if by_id else reverse(view_name)
    return Response(body, status=201, headers={**(headers or {}), "Location": location})
