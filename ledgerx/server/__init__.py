"""How gunicorn serves LedgerX: its worker class and the probe listener (``gunicorn.conf.py`` wires them)."""
