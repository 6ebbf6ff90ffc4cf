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

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
