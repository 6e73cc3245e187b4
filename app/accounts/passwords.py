"""Password hashing with argon2id, off the event loop and one hash at a time.

Parameters: 46 MiB of memory, one pass, one lane: one of OWASP's equivalent argon2id
settings (m=47104 KiB, t=1, p=1). One lane keeps a hash on one core, and the single
worker thread keeps sign-ins from ever taking both cores (or 46 MiB each) from the
event loop: ten sign-ins at once queue up instead of stalling downloads.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024

HASHER = PasswordHasher(time_cost=1, memory_cost=47_104, parallelism=1)


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> str:
    """The password, or WeakPassword saying why it cannot be used."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"the password must be at most {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class Passwords:
    """Hashing and checking on one worker thread (argon2-cffi releases the GIL)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
        # Checked against when the name is unknown, so that answer takes as long.
        self._decoy = hash_password("no account has this password")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, hash_password, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """False for a wrong password, and for no account (after the same work)."""
        target = stored_hash if stored_hash is not None else self._decoy
        ok = await asyncio.get_running_loop().run_in_executor(
            self._pool, verify_password, target, password[:MAX_PASSWORD_CHARS]
        )
        return ok and stored_hash is not None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
