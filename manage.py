#!/usr/bin/env python
import os
import sys
from pathlib import Path


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ledgerx.settings")
    from ledgerx.localenv import local_env_load

    # The checkout's local settings (written by scripts/run); the environment wins.
    local_env_load(Path(__file__).resolve().parent / ".env")
    from django.core.management import execute_from_command_line

    from ledgerx.observability.tracing import tracing_configure

    tracing_configure()  # opt-in: the standard OTEL_* variables turn it on

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
