"""Identities: tokens this backend mints and verifies (ES256, published as a JWKS), and the
admin key.

The signing key and the admin key live in the data dir in files of mode 0600. A Convex
deployment can trust the same tokens with a ``customJwt`` provider pointing at our JWKS
(``/.well-known/jwks.json``), issuer :attr:`Authority.issuer`, algorithm ES256.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

AUDIENCE = "collab"
KEY_FILE = "jwt_signing_key.pem"
ADMIN_KEY_FILE = "admin_key"
INSTANCE_FILE = "instance_id"

_STANDARD_CLAIMS = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "nickname": "nickname",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "email": "email",
    "email_verified": "emailVerified",
    "gender": "gender",
    "birthdate": "birthday",
    "zoneinfo": "timezone",
    "locale": "language",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
    "address": "address",
    "updated_at": "updatedAt",
}
_REGISTERED = {"iss", "sub", "aud", "exp", "iat", "nbf", "jti"}


class InsecureKeyFile(Exception):
    """A secret file is readable by group or others."""


class AuthFailure(Exception):
    pass


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureKeyFile(
            f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}` and start again"
        )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Authority:
    """Mints and verifies this data dir's tokens; holds the admin key."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_path, admin_path, inst_path = data_dir / KEY_FILE, data_dir / ADMIN_KEY_FILE, data_dir / INSTANCE_FILE
        if not key_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write_private(key_path, pem)
        if not admin_path.exists():
            _write_private(admin_path, secrets.token_urlsafe(32).encode())
        if not inst_path.exists():
            inst_path.write_text(uuid.uuid4().hex)
        _check_private(key_path)
        _check_private(admin_path)
        self.private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(self.private_key, ec.EllipticCurvePrivateKey)
        self.public_key = self.private_key.public_key()
        self.admin_key = admin_path.read_text().strip()
        instance = inst_path.read_text().strip()
        self.issuer = f"https://collab.local/{instance}"
        numbers = self.public_key.public_numbers()
        self.kid = instance[:16]
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url_uint(numbers.x).rjust(43, "A"),
            "y": _b64url_uint(numbers.y).rjust(43, "A"),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def mint(self, handle: str, *, agent: bool = False, name: str | None = None, ttl_s: float = 30 * 24 * 3600) -> str:
        now = int(time.time())
        kind = "agent" if agent else "human"
        claims = {
            "iss": self.issuer,
            "sub": f"{kind}:{handle}",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + max(3, int(ttl_s)),
            "name": name or handle,
            "preferred_username": handle,
            "collab_kind": kind,
        }
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def verify(self, token: str) -> tuple[dict[str, Any], float]:
        """Verify a JWT; returns the Convex ``UserIdentity`` (camelCase claims) and ``exp``."""
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["iss", "sub", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("Token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"Could not verify token: {exc}") from None
        return identity_from_claims(claims), float(claims["exp"])

    def check_admin(self, key: str) -> dict[str, Any] | None:
        """Admin key, optionally ``<key>:<base64 JSON identity>`` to act as a user. Returns the
        acting-as identity (or None); raises AuthFailure for a wrong key."""
        raw, _, acting = key.partition(":")
        if not secrets.compare_digest(raw.encode(), self.admin_key.encode()):
            raise AuthFailure("invalid admin key")
        if not acting:
            return None
        try:
            attrs = json.loads(base64.b64decode(acting))
        except (ValueError, TypeError):
            raise AuthFailure("invalid acting-as identity") from None
        return acting_as_identity(attrs)


def identity_from_claims(claims: dict[str, Any]) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "tokenIdentifier": f"{claims['iss']}|{claims['sub']}",
        "subject": claims["sub"],
        "issuer": claims["iss"],
    }
    for claim, value in claims.items():
        if claim in _REGISTERED:
            continue
        identity[_STANDARD_CLAIMS.get(claim, claim)] = value
    return identity


def acting_as_identity(attrs: Any) -> dict[str, Any]:
    if not isinstance(attrs, dict):
        raise AuthFailure("acting-as identity must be an object")
    subject = str(attrs.get("subject", "admin"))
    issuer = str(attrs.get("issuer", "https://collab.local/admin"))
    identity = {k: v for k, v in attrs.items() if isinstance(k, str)}
    identity.update(subject=subject, issuer=issuer, tokenIdentifier=attrs.get("tokenIdentifier", f"{issuer}|{subject}"))
    return identity
