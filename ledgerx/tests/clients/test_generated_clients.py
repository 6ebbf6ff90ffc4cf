"""Clients generated from the served schema work: what an SDK user gets is tested, not assumed.

A Python client (openapi-python-client, pinned in requirements-dev.txt) and a
TypeScript client (openapi-typescript types + openapi-fetch, pinned with their
lock file in ``typescript/``, type-checked by ``tsc --noEmit``) are generated
from ``/api/schema/`` of a live server, and each runs a first session: register,
log in, set the PIN, open accounts, deposit, transfer, page through lists.
In CI (``CI`` set) a missing tool is a failure: ``.ci/run`` installs Node.js.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TYPESCRIPT = Path(__file__).resolve().parent / "typescript"
PASSWORD = "analytical-engine-1843"


def _missing(tool: str):
    message = f"{tool} is not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: .ci/run installs it for CI")
    pytest.skip(message)


def _run(args, *, cwd, timeout=300, env=None):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture
def served_schema(live_server, tmp_path) -> Path:
    with urllib.request.urlopen(f"{live_server.url}/api/schema/?format=json", timeout=30) as response:
        schema = json.load(response)
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    return path


def test_a_generated_python_client_runs_a_first_session(live_server, served_schema, tmp_path):
    bin_dir = str(Path(sys.executable).parent)  # ruff, which formats the generated code, lives beside python
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    _run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(served_schema),
         "--meta", "none", "--output-path", str(tmp_path / "ledgerx_client")],
        cwd=tmp_path, env=env,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        _python_journey(live_server.url)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == "ledgerx_client" or name.startswith("ledgerx_client.")]:
            del sys.modules[name]


def _python_journey(base_url: str) -> None:
    api = lambda name: importlib.import_module(f"ledgerx_client.api.{name}")  # noqa: E731
    models = importlib.import_module("ledgerx_client.models")
    client_module = importlib.import_module("ledgerx_client")

    anonymous = client_module.Client(base_url=base_url)
    email = f"py-{uuid.uuid4().hex[:8]}@example.com"
    registered = api("identity.auth_register").sync_detailed(
        client=anonymous, body=models.RegisterInputRequest(email=email, password=PASSWORD, full_name="Ada")
    )
    assert registered.status_code == 201 and registered.parsed.email == email
    wrong = api("identity.auth_login").sync(
        client=anonymous, body=models.LoginInputRequest(email=email, password="not-the-password")
    )
    assert wrong.error.code.value == "invalid_credentials"  # the error body is a typed model with a code enum
    login = models.LoginInputRequest(email=email, password=PASSWORD)
    pair = api("identity.auth_login").sync(client=anonymous, body=login)
    client = client_module.AuthenticatedClient(base_url=base_url, token=pair.access)

    pin_set = api("identity.me_pin_update")
    pin = pin_set.sync_detailed(client=client, body=models.PinSetInputRequest(pin="4826", password=PASSWORD))
    assert pin.status_code == 204
    create = api("accounts.accounts_create")
    usd = models.AccountCreateInputRequestCurrency.USD
    main = create.sync(client=client, body=models.AccountCreateInputRequest(currency=usd, name="main"))
    savings = create.sync(client=client, body=models.AccountCreateInputRequest(currency=usd))  # name is optional

    deposit = api("money.deposits_create").sync_detailed(
        client=client, idempotency_key=f"py-d-{email}", body=models.DepositInputRequest(account=main.id, amount=1050)
    )
    assert deposit.status_code == 201 and deposit.headers["Location"] == f"/api/v1/transactions/{deposit.parsed.id}"
    transfer = api("money.transfers_create").sync(
        client=client,
        idempotency_key=f"py-t-{email}",
        body=models.TransferInputRequest(source_account=main.id, destination_account=savings.id, amount=250, pin="4826"),
    )
    assert transfer.status.value == "committed"

    seen, cursor = [], importlib.import_module("ledgerx_client.types").UNSET
    while True:
        page = api("money.transactions_list").sync(client=client, page_size=1, cursor=cursor)
        seen += [txn.type_.value for txn in page.results]
        if not page.next_:
            break
        cursor = urllib.parse.parse_qs(urllib.parse.urlsplit(page.next_).query)["cursor"][0]
    assert seen == ["transfer", "deposit"]
    accounts = api("accounts.accounts_list").sync(client=client, page_size=1)
    assert len(accounts.results) == 1 and accounts.next_
    entries = api("accounts.accounts_entries").sync(account_id=main.id, client=client, page_size=200)
    assert [line.amount for line in entries.results] == [-250, 1050]
    assert api("accounts.accounts_retrieve").sync(account_id=main.id, client=client).balance.available == 800
    too_big = api("money.transactions_list").sync_detailed(client=client, page_size=201)
    assert too_big.status_code == 400


def test_a_generated_typescript_client_type_checks_and_runs_a_first_session(live_server, served_schema, tmp_path):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _missing("Node.js (node and npm)")
    modules = TYPESCRIPT / "node_modules"
    if not (modules / ".package-lock.json").exists():  # npm writes it last: an install that finished
        _run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=TYPESCRIPT)
    # Generate and build in a copy: the checkout keeps only the sources and the lock file.
    work = tmp_path / "typescript"
    shutil.copytree(TYPESCRIPT, work, ignore=shutil.ignore_patterns("node_modules", "generated", "build"))
    (work / "node_modules").symlink_to(modules)
    bin_dir = work / "node_modules" / ".bin"
    _run([str(bin_dir / "openapi-typescript"), str(served_schema), "-o", "generated/schema.d.ts"], cwd=work)
    _run([str(bin_dir / "tsc"), "--noEmit", "-p", "."], cwd=work)
    _run([str(bin_dir / "tsc"), "--noCheck", "-p", "."], cwd=work)
    result = _run([node, "build/journey.js", live_server.url], cwd=work, timeout=120)
    assert "journey ok" in result.stdout
