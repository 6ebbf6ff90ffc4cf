"""The README's configuration table names exactly the variables the settings read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where the process configuration is read (engineer commands document their own variables).
CONFIG_SOURCES = ("ledgerx/settings.py", "gunicorn.conf.py")
_READ = re.compile(r"""(?:os\.environ\.get|os\.environ\[|os\.getenv|env_bool|env_int|env_list|env_float|secret_from_env)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")


def _variables_read() -> set[str]:
    return {name for source in CONFIG_SOURCES for name in _READ.findall((ROOT / source).read_text())}


def _variables_documented() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_configuration_table_documents_every_variable_the_settings_read():
    read = _variables_read()
    assert len(read) > 20  # the pattern still finds the reads
    assert sorted(read - _variables_documented()) == []


def test_the_configuration_table_names_no_variable_that_nothing_reads():
    assert sorted(_variables_documented() - _variables_read()) == []
