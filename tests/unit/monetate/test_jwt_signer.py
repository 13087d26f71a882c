"""The JWT traded for a token: claims, algorithm, signature."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from monetate_ingest.monetate.credentials import Credentials
from monetate_ingest.monetate.jwt_signer import sign_jwt


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_signs_username_and_iat_with_each_algorithm(algorithm: Any, key_pair: Any) -> None:
    # Given credentials using one of Monetate's algorithms
    creds = Credentials("api-123-example", key_pair.private_key, algorithm)
    # When a JWT is signed at a fractional time
    token = sign_jwt(creds, 1_700_000_000.9)
    # Then its header names the algorithm, its signature verifies with the public key,
    # and its claims are the username and the whole-second issue time
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    claims = jwt.decode(token, key_pair.public_pem, algorithms=[algorithm], options={"verify_iat": False})
    assert claims == {"username": "api-123-example", "iat": 1_700_000_000}


def test_signature_fails_with_another_key(key_pair: Any, other_key_pair: Any) -> None:
    # Given a JWT signed with one key  When verified with another  Then it is refused
    token = sign_jwt(Credentials("u", key_pair.private_key), 1000.0)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other_key_pair.public_pem, algorithms=["RS256"], options={"verify_iat": False})
