"""Read-your-writes: remember where the primary's WAL was after each successful write request."""

import logging

from ledgerx.context import user_id_var
from ledgerx.db.replicas import LSN_UNKNOWN, lsn_current, lsn_remember

logger = logging.getLogger("ledgerx.db.replicas")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ReadYourWritesMiddleware:
    """After an authenticated write request succeeds, store the primary's WAL position for its user.

    The cost on the write path: one ``SELECT pg_current_wal_insert_lsn()`` on
    the primary and one Redis call, after the response is built (the commit
    is done, so the position is past it). Installed only when
    ``DATABASE_REPLICA_URLS`` names replicas; refused writes (4xx) changed
    nothing a replica could show, and reads skip it entirely.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method in _SAFE_METHODS or response.status_code >= 400:
            return response
        user = getattr(request, "user", None)
        user_id = user_id_var.get() or (user.pk if getattr(user, "is_authenticated", False) else None)
        if user_id is None:
            return response
        try:
            lsn = lsn_current()
        except Exception:  # noqa: BLE001 - the write is committed; never turn it into an error
            logger.warning("read-your-writes position not read; this user reads from the primary for now", exc_info=True)
            lsn = LSN_UNKNOWN
        lsn_remember(user_id, lsn)
        return response
