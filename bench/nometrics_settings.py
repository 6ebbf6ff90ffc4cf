"""Production settings with every metric off: the `*_nometrics` bench points' server.

The request middleware is left out and the business counters become no-ops
(``bench.apps.MetricsOff``), so the pair `http_transfer_warm` /
`http_transfer_warm_nometrics` shows what metrics cost a request. Bench only.
"""

from ledgerx.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.MetricsOff"]  # noqa: F405
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("ledgerx.observability.")]  # noqa: F405
