"""Secret hashing. Nothing here logs, returns or stores a secret in clear.

Two kinds of secret, two hashes:
- tokens and keys we or the operator generate (high entropy): SHA-256, so a request's token
  finds its record with one keyed read;
- passwords people choose (low entropy): salted scrypt, checked against the user's record.
"""

import base64
import hashlib
import hmac
import secrets
from functools import cache

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def matches(presented: str, expected_digest: str) -> bool:
    """Whether a presented token hashes to the stored digest, compared in constant time."""
    return hmac.compare_digest(token_digest(presented), expected_digest)


@cache
def decoy_password_hash() -> str:
    """A hash no password matches, checked when a login names an unknown user, so that an
    unknown user and a wrong password take the same time. Made once per process, on first
    use (scrypt is slow by design)."""
    return hash_password(new_token())
