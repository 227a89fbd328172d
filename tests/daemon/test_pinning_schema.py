"""The ``/pins`` routes of a real ``artdag daemon`` on 127.0.0.1 against the IPFS Pinning
Service spec (vendored, unchanged, as ``tests/specs/ipfs-pinning-service.yaml``), driven by
schemathesis 4: requests
generated from the spec, valid (positive) and invalid (negative), with a valid token.

Checks run on every response: ``not_a_server_error`` (no 5xx), ``status_code_conformance``
(only codes the spec lists), ``content_type_conformance`` (the declared media type),
``response_headers_conformance`` and ``response_schema_conformance`` (bodies match PinStatus,
PinResults, Failure), and ``negative_data_rejection`` (a request the spec forbids is refused
with a 4xx). Examples per operation are bounded so the whole file stays well under a minute.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks

from daemon.core.pinning_api.tokens import add_token
from tests.harness.daemons import DaemonProcess

pytestmark = pytest.mark.daemon

SPEC = (
    Path(__file__).resolve().parents[1] / "specs" / "ipfs-pinning-service.yaml"
)  # vendored, unchanged
EXAMPLES = int(os.environ.get("ARTDAG_SCHEMA_EXAMPLES", "25"))

TOKEN = secrets.token_urlsafe(32)  # the daemon gets its hash; schemathesis sends it
AUTH = {"Authorization": f"Bearer {TOKEN}"}
schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.config.SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"accessToken": {"bearer": TOKEN}}}}
    ),
)

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("schema") / "node"
    home.mkdir()
    # every generated request carries the one token: no per-token rate limit here
    (home / "config.toml").write_text(
        "[pinning]\nfetch_timeout_seconds = 2\nrequests_per_minute = 0\n"
    )
    add_token(home / "pinning-tokens", "schemathesis", token=TOKEN)
    daemon = DaemonProcess(home).start()
    try:
        yield daemon.api_url
    finally:
        daemon.stop()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_pins_conform_to_the_pinning_service_spec(case: schemathesis.Case, served: str) -> None:
    case.call_and_validate(base_url=served, checks=CHECKS)


def test_successful_responses_conform_too(served: str) -> None:
    """Generated CIDs are almost never valid, so the 2xx bodies (PinStatus, PinResults) are
    checked here on explicit cases: add, list, get, replace, delete."""
    import dag

    cids = [
        dag.cid_to_str(dag.Block.encode(f"schema {i}".encode(), codec="raw").cid) for i in (1, 2)
    ]
    ok = [c for c in CHECKS if c is not st_checks.negative_data_rejection]
    added = (
        schema["/pins"]["POST"]
        .Case(body={"cid": cids[0], "name": "s", "origins": [], "meta": {"app": "t"}})
        .call_and_validate(base_url=served, checks=ok, headers=AUTH)
    )
    assert added.status_code == 202
    rid = added.json()["requestid"]
    listed = (
        schema["/pins"]["GET"]
        .Case(query={"status": "queued,pinning,failed", "name": "s", "match": "iexact"})
        .call_and_validate(base_url=served, checks=ok, headers=AUTH)
    )
    assert listed.status_code == 200 and listed.json()["count"] >= 1
    got = (
        schema["/pins/{requestid}"]["GET"]
        .Case(path_parameters={"requestid": rid})
        .call_and_validate(base_url=served, checks=ok, headers=AUTH)
    )
    assert got.status_code == 200 and got.json()["pin"]["cid"] == cids[0]
    replaced = (
        schema["/pins/{requestid}"]["POST"]
        .Case(path_parameters={"requestid": rid}, body={"cid": cids[1]})
        .call_and_validate(base_url=served, checks=ok, headers=AUTH)
    )
    assert replaced.status_code == 202 and replaced.json()["requestid"] != rid
    deleted = (
        schema["/pins/{requestid}"]["DELETE"]
        .Case(path_parameters={"requestid": replaced.json()["requestid"]})
        .call_and_validate(base_url=served, checks=ok, headers=AUTH)
    )
    assert deleted.status_code == 202
