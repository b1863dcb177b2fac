"""Exceptions raised by the auth domain.

Our exception hierarchy:

* AuthError
  + SiweError
    - SiweParseError
    - SiweSignatureError
      · SiweBadSignature
      · SiweSignerMismatch
    - SiweMismatch
      · SiweDomainMismatch
      · SiweUriMismatch
      · SiweChainMismatch
      · SiweNonceMismatch
    - SiweTimeError
      · SiweExpired
      · SiweNotYetValid
      · SiweIssuedInFuture
  + NonceError
    - NonceUnknown
    - NonceUsed
    - NonceExpired
  + NotAuthenticated
  + RoleMissing
* SessionStoreUnavailable (not an AuthError: the client did nothing wrong)

None of these know about HTTP: the auth router maps them to problem+json responses.
"""

from __future__ import annotations

from datetime import datetime


class AuthError(Exception):
    """Root of every error the auth domain raises; catch it to handle any sign-in failure."""


# ---------------------------------------------------------------------------------------------
# Sign-In with Ethereum (EIP-4361)
# ---------------------------------------------------------------------------------------------


class SiweError(AuthError):
    """Raised when a Sign-In with Ethereum message is malformed, badly signed or not acceptable."""


class SiweParseError(SiweError):
    """Raised when a message, or a field given to ``SiweMessage``, breaks the EIP-4361 ABNF.

    ``line`` is the 1-based line of the message text at fault, when there is one; ``field`` names
    the message field at fault, when there is one.
    """

    def __init__(self, reason: str, *, line: int | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.line = line
        self.field = field
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(field)
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"invalid SIWE message: {prefix}{reason}")


class SiweSignatureError(SiweError):
    """Raised when the signature does not prove that the message's address signed the message."""


class SiweBadSignature(SiweSignatureError):
    """Raised when the signature is not a canonical 65-byte EIP-191 signature that recovers a key.

    This covers bad hex, a wrong length, an unknown recovery byte, r or s out of range, a high-s
    (malleable) signature and a signature from which no public key can be recovered.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid signature: {reason}")


class SiweSignerMismatch(SiweSignatureError):
    """Raised when the signature is well formed but was made by a key other than the message's."""

    def __init__(self, expected: str, recovered: str) -> None:
        self.expected = expected
        self.recovered = recovered
        super().__init__(
            f"signature was made by {recovered}, not by the message's address {expected}"
        )


class SiweMismatch(SiweError):
    """Raised when a message field differs from the value the relying party expects."""


class SiweDomainMismatch(SiweMismatch):
    """Raised when the message's domain is not the domain the sign-in was requested for."""

    def __init__(self, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"message is for domain {got!r}, expected {expected!r}")


class SiweUriMismatch(SiweMismatch):
    """Raised when the message's URI is not the URI the sign-in was requested for."""

    def __init__(self, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"message is for URI {got!r}, expected {expected!r}")


class SiweChainMismatch(SiweMismatch):
    """Raised when the message's chain ID is not the chain the sign-in was requested for."""

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"message is for chain ID {got}, expected {expected}")


class SiweNonceMismatch(SiweMismatch):
    """Raised when the message's nonce is not the nonce issued for this sign-in.

    The expected nonce is deliberately not kept: this message may reach the client, and echoing
    the issued nonce back would hand it to whoever submitted a forged message.
    """

    def __init__(self, got: str) -> None:
        self.got = got
        super().__init__(f"nonce {got!r} is not the nonce issued for this sign-in")


class SiweTimeError(SiweError):
    """Raised when the message is not valid at the time of verification."""


class SiweExpired(SiweTimeError):
    """Raised when the message's Expiration Time is at or before the time of verification."""

    def __init__(self, expired_at: datetime, now: datetime) -> None:
        self.expired_at = expired_at
        self.now = now
        super().__init__(
            f"message expired at {expired_at.isoformat()} (checked at {now.isoformat()})"
        )


class SiweNotYetValid(SiweTimeError):
    """Raised when the message's Not Before time is still in the future (beyond clock skew)."""

    def __init__(self, not_before: datetime, now: datetime) -> None:
        self.not_before = not_before
        self.now = now
        super().__init__(
            f"message is not valid before {not_before.isoformat()} (checked at {now.isoformat()})"
        )


class SiweIssuedInFuture(SiweTimeError):
    """Raised when the message's Issued At time is in the future (beyond clock skew)."""

    def __init__(self, issued_at: datetime, now: datetime) -> None:
        self.issued_at = issued_at
        self.now = now
        super().__init__(
            f"message claims to be issued at {issued_at.isoformat()}, "
            f"which is in the future (checked at {now.isoformat()})"
        )


# ---------------------------------------------------------------------------------------------
# Nonces, sessions and roles
# ---------------------------------------------------------------------------------------------


class NonceError(AuthError):
    """Raised when a sign-in message's nonce can't be accepted."""


class NonceUnknown(NonceError):
    """Raised when the nonce was never issued by this service."""

    def __init__(self, nonce: str) -> None:
        super().__init__(f"nonce {nonce!r} was not issued by this service; ask POST /auth/nonce")
        self.nonce = nonce


class NonceUsed(NonceError):
    """Raised when the nonce has already been used to sign in (a replay)."""

    def __init__(self, nonce: str) -> None:
        super().__init__(
            f"nonce {nonce!r} has already been used; ask POST /auth/nonce for a new one"
        )
        self.nonce = nonce


class NonceExpired(NonceError):
    """Raised when the nonce's lifetime ran out before it was used."""

    def __init__(self, nonce: str, expired_at: datetime) -> None:
        super().__init__(f"nonce {nonce!r} expired at {expired_at.isoformat()}; ask for a new one")
        self.nonce = nonce
        self.expired_at = expired_at


class NotAuthenticated(AuthError):
    """Raised when a request needs a signed-in wallet and carries no valid session."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RoleMissing(AuthError):
    """Raised when the signed-in wallet lacks the role a route needs."""

    def __init__(self, address: str, role: str) -> None:
        super().__init__(f"wallet {address} does not hold the {role} role")
        self.address = address
        self.role = role


class SessionStoreUnavailable(Exception):
    """Raised when a sign-out can't reach the session copy in Redis; nothing was revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"sign-out could not reach the session store ({reason}); try again")
        self.reason = reason
