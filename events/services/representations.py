"""Objects as the API shows them, in plain Python: the data of events and of webhook bodies.

Domain code uses no DRF, so the services that record events build these
themselves, and the API renders the same dicts.
"""

from events.models import Event


def account_representation(account) -> dict:
    """The account as ``GET accounts/{id}`` shows it (plain Python: domain code uses no DRF)."""
    return {
        "id": str(account.pk),
        "number": account.number,
        "name": account.name,
        "currency": account.currency,
        "status": account.status,
        "balance": {"posted": account.posted, "pending": account.pending, "available": account.posted - account.pending},
        "created_at": timestamp_text(account.created_at),
    }


def user_representation(user) -> dict:
    """The user as ``GET me`` shows it."""
    return {
        "id": str(user.pk),
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "status": user.status,
        "pin_set": user.pin_set,
    }



def event_representation(event: Event) -> dict:
    return {"id": str(event.pk), "type": event.type, "created_at": timestamp_text(event.created_at), "data": event.data}


def timestamp_text(value) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
