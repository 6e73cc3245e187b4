"""Principals: who a request acts for.

Today one kind: an account, signed in by a session cookie or an API token. Share
links and file requests will be principals of their own with narrower rights (one
file to read; uploads into one account), checked by the same rules in `gate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.accounts.store import Account


@dataclass(frozen=True, slots=True)
class AccountPrincipal:
    """An account acting through a session (`credential` is the session's hash) or an
    API token (`credential` is the token's id)."""

    account: Account
    via: Literal["session", "token"]
    credential: str

    @property
    def account_id(self) -> str:
        return self.account.id


type Principal = AccountPrincipal
