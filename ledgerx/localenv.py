"""The checkout's ``.env``: local development settings that ``manage.py`` reads.

``scripts/run`` writes ``.env`` once per checkout (``DJANGO_DEBUG=1`` and keys
of its own), so ``python manage.py <command>`` works inside ``.venv`` exactly
as ``scripts/run`` does. Only ``manage.py`` reads it: the WSGI/ASGI entry
points (gunicorn in production) never do, and a variable set in the
environment always wins over the file.
"""

import os
from pathlib import Path


def local_env_load(path: Path) -> None:
    """Set each ``NAME=value`` line of ``path`` that the environment does not set already.

    Blank lines and ``#`` comments are skipped; one pair of surrounding quotes
    is dropped from a value. A missing file is no error.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        name, value = name.removeprefix("export ").strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(name, value)
