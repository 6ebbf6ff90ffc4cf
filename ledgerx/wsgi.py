import os

from django.core.wsgi import get_wsgi_application

from ledgerx.observability.tracing import tracing_configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ledgerx.settings")
tracing_configure()  # opt-in (OTEL_* variables); before Django builds its middleware chain
application = get_wsgi_application()
