"""Bearer tokens: the tokens file, HS256 with a shared secret, and keys from the issuer's JWKS."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.utils import base64url_encode

from api.auth import Authenticator, KeysUnavailable, TokenEntry, write_tokens_file

ISSUER, AUDIENCE, SECRET = "https://idp.example", "talent-journey", "s3cret-s3cret-s3cret-s3cret-s3cret"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "u-1",
        "role": "leader",
        "person_id": "p-3",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        **overrides,
    }


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A JWKS endpoint serving the public half of `rsa_key` under kid "k1"."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


def _jwks_auth(url: str) -> Authenticator:
    return Authenticator([], jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_url=url, jwks_algorithms=["RS256"])


def test_the_tokens_file_maps_each_token_to_its_role_and_person(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    write_tokens_file(
        path, [TokenEntry(token="t-c", role="coordinator"), TokenEntry(token="t-l", role="leader", person_id="p-3")]
    )
    assert path.stat().st_mode & 0o777 == 0o600
    auth = Authenticator.from_file(path)
    leader = auth.authenticate("t-l")
    assert leader is not None and (leader.role, leader.person_id) == ("leader", "p-3")
    assert auth.authenticate("t-") is None and auth.authenticate("") is None


def test_a_leader_token_without_a_person_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"token": "x", "role": "leader"}]))
    with pytest.raises(ValueError, match="person_id"):
        Authenticator.from_file(path)


def test_hs256_tokens_are_checked_for_signature_issuer_audience_and_expiry() -> None:
    auth = Authenticator([], jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    principal = auth.authenticate(jwt.encode(_claims(), SECRET, algorithm="HS256"))
    assert principal is not None and (principal.role, principal.person_id, principal.token_id) == (
        "leader",
        "p-3",
        "jwt:u-1",
    )
    for bad in (
        _claims(exp=int(time.time()) - 120),
        _claims(iss="https://evil.example"),
        _claims(aud="someone-else"),
        _claims(role="admin"),
        _claims(person_id=None),
        {k: v for k, v in _claims().items() if k != "exp"},
    ):
        assert auth.authenticate(jwt.encode(bad, SECRET, algorithm="HS256")) is None, bad
    assert auth.authenticate(jwt.encode(_claims(), "another-secret-another-secret-another", algorithm="HS256")) is None
    assert auth.authenticate(jwt.encode(_claims(), None, algorithm="none")) is None  # type: ignore[arg-type]


def test_jwks_keys_verify_rs256_and_nothing_else(rsa_key: rsa.RSAPrivateKey, jwks_url: str) -> None:
    auth = _jwks_auth(jwks_url)
    token = jwt.encode(_claims(role="coordinator", person_id=None), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    principal = auth.authenticate(token)
    assert principal is not None and principal.role == "coordinator"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(), other_key, algorithm="RS256", headers={"kid": "k1"})
    assert auth.authenticate(forged) is None
    unknown_kid = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "k9"})
    assert auth.authenticate(unknown_kid) is None
    # Algorithm confusion: an HMAC token keyed with the public key is never accepted.
    public_pem = rsa_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = b".".join(
        base64url_encode(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": "k1"}, _claims())
    )
    signature = base64url_encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    assert auth.authenticate((signing_input + b"." + signature).decode()) is None
    assert auth.authenticate(jwt.encode(_claims(), SECRET, algorithm="HS256")) is None


def test_an_unreachable_jwks_is_a_dependency_failure_not_a_bad_token(rsa_key: rsa.RSAPrivateKey) -> None:
    auth = _jwks_auth("http://127.0.0.1:9/jwks.json")
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(KeysUnavailable):
        auth.authenticate(token)


def test_only_asymmetric_algorithms_may_come_from_a_jwks() -> None:
    with pytest.raises(ValueError, match="HS256"):
        Authenticator([], jwks_url="http://127.0.0.1:9/jwks.json", jwks_algorithms=["RS256", "HS256"])
