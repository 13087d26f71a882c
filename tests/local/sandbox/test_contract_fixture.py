"""The autouse contract fixture itself, in a pytest run of its own: drift fails the test that made it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

INNER = """
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.sandbox import MonetateSandbox
from local.sandbox.responses import envelope

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SCHEMA = {"name": "customers", "fields": {"customer_id": {"data_type": "STRING", "identifier": True}}}


def started():
    sb = MonetateSandbox("acme").start()
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sb.register_key("api-1-x", pem)
    sb.add_schema(SCHEMA)
    signed = jwt.encode({"username": "api-1-x", "iat": time.time()}, KEY, algorithm="RS256")
    token = requests.get(sb.auth_url, headers={"Authorization": "JWT " + signed}, timeout=5).json()
    return sb, {"Authorization": "Token " + token["data"]["token"]}


def test_a_drifted_answer():
    sb, auth = started()
    sb._api.endpoints._records = lambda name, request: envelope(200, {"customer_id": "c1"})
    answer = requests.get(sb.data_url + "/data/customers/", params={"id": "c1"}, headers=auth, timeout=5)
    sb.stop()
    assert answer.status_code == 200  # the test itself is content with it


def test_a_drifted_request():
    sb, auth = started()
    answer = requests.get(sb.data_url + "/schema", headers=auth, timeout=5)
    sb.stop()
    assert answer.status_code == 404


@pytest.mark.sends_invalid_requests
def test_the_same_request_on_purpose():
    sb, auth = started()
    answer = requests.get(sb.data_url + "/schema", headers=auth, timeout=5)
    sb.stop()
    assert answer.status_code == 404


def test_no_sandbox_at_all():
    assert 1 + 1 == 2
"""


def test_drift_fails_the_test_that_made_it_with_path_method_and_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run with the project's fixtures: a drifted answer, a drifted request, the same
    # request sent on purpose, and a test with no sandbox
    pytester.makeconftest('pytest_plugins = ["tests.fixtures_sandbox"]')
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "layers" / "monetate_ingest"), str(ROOT)]))
    # When it runs
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    # Then the two drifting tests fail (at teardown, where the exchanges are checked), the others pass
    result.assert_outcomes(passed=4, errors=2)
    out = result.stdout.str()
    assert "ERROR at teardown of test_a_drifted_answer" in out
    assert "ERROR at teardown of test_a_drifted_request" in out
    # And each failure names the method, the path, the status and the validator's message
    assert "GET /api/data/v1/acme/production/data/customers/ → 200: the answer breaks the reference" in out
    assert "'schema_rows' is a required property" in out
    assert "GET /api/data/v1/acme/production/schema → 404: the request breaks the reference" in out
    assert "its paths end with '/'" in out
    # And no credential is in what was printed
    assert "Token 1." not in out and "JWT ey" not in out
