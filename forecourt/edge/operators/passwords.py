"""Password hashing with argon2id (argon2-cffi) and the password policy.

Parameters default to RFC 9106's second recommended profile (64 MiB, t=3, p=4), which a dealer
box affords. A stored hash made with other parameters still verifies and is flagged for rehash, so
raising the cost later upgrades every account at its next login without a migration.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from forecourt.edge.operators.errors import PasswordPolicyViolation

MIN_PASSWORD_LENGTH = 12
#: Beyond this a "password" is more likely a pasted file; refusing bounds the hashing work too.
MAX_PASSWORD_LENGTH = 256
#: Stored for an account whose owner has not enrolled yet: no password ever verifies against it.
UNUSABLE_PASSWORD = "!unset"  # noqa: S105 - not a password: a marker no hash matches


class PasswordHashing:
    """Hash and verify operator passwords; one instance per process, thread-safe."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        if self._hasher.type is not Type.ID:
            raise ValueError("operator passwords are hashed with argon2id only")
        # Verifying against this when the username is unknown keeps the timing of both paths alike.
        self._dummy_hash = self._hasher.hash("forecourt-unknown-operator")

    @classmethod
    def with_cost(cls, time_cost: int, memory_kib: int, parallelism: int = 1) -> PasswordHashing:
        """Custom argon2id cost (tests use a cheap one; the rehash path is tested with it)."""
        return cls(
            PasswordHasher(
                time_cost=time_cost,
                memory_cost=memory_kib,
                parallelism=parallelism,
                type=Type.ID,
            )
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; False for a mismatch or an unreadable stored hash."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification, for a username that does not exist."""
        self.verify(self._dummy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


def check_password_policy(password: str, username: str) -> None:
    """Refuse a weak new password with the rule it breaks; the password itself is never echoed."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyViolation(f"shorter than {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyViolation(f"longer than {MAX_PASSWORD_LENGTH} characters")
    if username.casefold() in password.casefold():
        raise PasswordPolicyViolation("contains the username")
    if len(set(password)) < 5:
        raise PasswordPolicyViolation("fewer than 5 distinct characters")
