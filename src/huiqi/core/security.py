"""Password hashing, opaque tokens and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# A real hash of a random string, verified when the user does not exist so that a
# failed log-in for an unknown name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Hash new passwords with other argon2 parameters (the test suite uses minimal ones).

    Production never calls this: the library defaults (RFC 9106 low-memory profile) stay in force.
    Hashes already stored keep verifying, since each hash carries its own parameters.
    """
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its hash in constant-ish time, also for unknown users."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def new_token(prefix: str = "") -> str:
    """A random, URL-safe secret token."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 digest stored instead of a token, so a database leak reveals no token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(secret_key: str, nonce: str) -> str:
    """The CSRF token bound to a browser's CSRF nonce cookie."""
    return hmac.new(secret_key.encode(), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token_valid(secret_key: str, nonce: str | None, token: str | None) -> bool:
    """Whether a submitted CSRF token matches the browser's nonce cookie."""
    if not nonce or not token:
        return False
    return hmac.compare_digest(csrf_token_for(secret_key, nonce), token)
