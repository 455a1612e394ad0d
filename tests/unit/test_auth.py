"""Bearer tokens: the tokens file, HS256 with a shared secret, and keys from the issuer's JWKS."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
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
    assert principal is not None and (principal.role, principal.person_id) == ("leader", "p-3")
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


def test_reordering_or_extending_the_tokens_file_keeps_each_callers_id(tmp_path: Path) -> None:
    entries = [
        TokenEntry(token="t-hr", role="hr_system"),
        TokenEntry(token="t-c", role="coordinator", person_id="p-c", id="ops-coordinator"),
        TokenEntry(token="t-l", role="leader", person_id="p-3"),
    ]
    path = tmp_path / "tokens.json"
    write_tokens_file(path, entries)
    before = {t: Authenticator.from_file(path).authenticate(t) for t in ("t-hr", "t-c", "t-l")}
    write_tokens_file(path, [TokenEntry(token="t-new", role="hr_system"), *reversed(entries)])
    after = {t: Authenticator.from_file(path).authenticate(t) for t in ("t-hr", "t-c", "t-l")}
    assert before == after
    ids = {t: p.token_id for t, p in after.items() if p is not None}
    # An entry's own id, else a hash of its token: never a list position, never the token itself.
    assert ids == {
        "t-hr": "file:" + hashlib.sha256(b"t-hr").hexdigest()[:16],
        "t-c": "file:ops-coordinator",
        "t-l": "file:" + hashlib.sha256(b"t-l").hexdigest()[:16],
    }


def test_a_tokens_file_without_ids_stays_valid_and_ids_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"token": "old", "role": "hr_system", "person_id": None}]))
    principal = Authenticator.from_file(path).authenticate("old")
    assert principal is not None and principal.token_id == "file:" + hashlib.sha256(b"old").hexdigest()[:16]
    for bad in ("with space", "new\nline", "x\u202e", ""):
        path.write_text(json.dumps([{"token": "t", "role": "hr_system", "id": bad}]))
        with pytest.raises(ValueError, match="id"):
            Authenticator.from_file(path)
    path.write_text(
        json.dumps(
            [{"token": "a", "role": "hr_system", "id": "same"}, {"token": "b", "role": "hr_system", "id": "same"}]
        )
    )
    with pytest.raises(ValueError, match="same id"):
        Authenticator.from_file(path)


def test_a_jwt_callers_id_is_a_hash_of_issuer_and_sub_never_the_sub() -> None:
    auth = Authenticator([], jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    sub = "mette.sorensen@aalborg.dk"
    principal = auth.authenticate(jwt.encode(_claims(sub=sub), SECRET, algorithm="HS256"))
    assert principal is not None
    assert principal.token_id == "jwt:" + hashlib.sha256(f"{ISSUER}\0{sub}".encode()).hexdigest()[:16]
    assert sub not in principal.token_id and "mette" not in principal.token_id
    # Stable across tokens of the same subject; another subject is another caller.
    again = auth.authenticate(jwt.encode(_claims(sub=sub, iat=int(time.time()) - 5), SECRET, algorithm="HS256"))
    other = auth.authenticate(jwt.encode(_claims(sub="u-2"), SECRET, algorithm="HS256"))
    assert again is not None and other is not None
    assert again.token_id == principal.token_id != other.token_id


def test_a_short_hs256_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes") as info:
        Authenticator([], jwt_secret="s" * 31)
    assert "s" * 31 not in str(info.value)
    # 32 bytes is enough; so are 16 two-byte characters.
    Authenticator([], jwt_secret="s" * 32)
    Authenticator([], jwt_secret="æ" * 16)


def test_the_tokens_file_is_written_0600_from_its_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data" / "tokens.json"
    path.parent.mkdir()
    path.write_text("[]")
    path.chmod(0o644)  # an older, readable file is replaced, not rewritten in place
    old_inode = path.stat().st_ino

    def no_chmod(*_: Any, **__: Any) -> None:
        raise AssertionError("the tokens file must be created 0600, never chmodded after writing")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    previous = os.umask(0)  # even with a permissive umask
    try:
        write_tokens_file(path, [TokenEntry(token="t", role="hr_system", id="hr")])
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.stat().st_ino != old_inode
    assert json.loads(path.read_text()) == [{"token": "t", "role": "hr_system", "id": "hr"}]
    assert [p.name for p in path.parent.iterdir()] == ["tokens.json"]  # no temporary file left behind
