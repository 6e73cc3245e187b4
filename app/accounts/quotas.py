"""Quotas: space held for uploads in flight, checked against what each account stores.

What an account stores (`users.used_bytes`) is kept by triggers in the same
transaction as its file rows. Uploads in flight hold space here, in the server's
memory: a check reads the stored figure afresh and adds what every other upload
of the account holds, with no await in between, so two uploads that each fit
alone but not together can never both be kept. Under a quota, space is held for
exactly the bytes counted (a Content-Length at once, else chunk by chunk), so an
upload is refused the moment its bytes pass the quota, and never because another
upload held more than it needed. Without a quota, nothing can be refused: holds
grow in steps of `STEP_BYTES`, one database read per step, in case a quota is set
meanwhile.
An upload gives its space back only after its row is committed: for that moment
its bytes count twice, which can refuse early but never lets one through.
"""

from __future__ import annotations

from app.catalog.protocol import Database

STEP_BYTES = 4 * 1024 * 1024


class QuotaExceeded(Exception):
    def __init__(
        self, used: int, quota: int, needed: int, whose: str = "your", unfinished: int = 0
    ) -> None:
        super().__init__(f"{used} of {quota} bytes used; {needed} more needed")
        self.used = used
        self.quota = quota
        self.needed = needed
        # Whose quota, in the refusal's words ("your", or "the recipient's").
        self.whose = whose
        # Of `used`, what unfinished resumable uploads hold.
        self.unfinished = unfinished


class Reservation:
    """Space held for one upload request (all its files), given back on `release`."""

    def __init__(
        self, ledger: QuotaLedger, account_id: str, whose: str = "your", unlimited: bool = False
    ) -> None:
        self._ledger = ledger
        self.account_id = account_id
        self.whose = whose
        # Known to have no quota (from the account the gate resolved): nothing to read.
        self.unlimited = unlimited
        self.held = 0
        self.covered = 0

    def cover(self, more: int) -> None:
        """Hold `more` bytes beyond what this upload already counts, or QuotaExceeded.
        A refusal ends the whole upload (requests are atomic), so everything it held
        is given back at once, before its clean-up awaits anything: another upload
        that fits must not be refused for space this one no longer needs."""
        self.covered += more
        if self.covered > self.held:
            try:
                self._ledger._grow(self, self.covered - self.held)
            except QuotaExceeded:
                self.release()
                raise

    def release(self) -> None:
        self._ledger._give_back(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class QuotaLedger:
    def __init__(self, db: Database, default_quota: int | None) -> None:
        self._db = db
        self._default = default_quota
        self._held: dict[str, int] = {}

    def reserve(
        self, account_id: str, *, whose: str = "your", unlimited: bool = False
    ) -> Reservation:
        """`whose`: how a refusal names the quota ("the recipient's" for an upload
        through a file request, whose uploader is not the account). `unlimited`: the
        caller knows the account has no quota (the gate's account row, which a quota
        change invalidates), so no step reads the database."""
        return Reservation(self, account_id, whose, unlimited)

    def usage(self, account_id: str) -> tuple[int, int | None]:
        """(bytes stored, quota or None) as the database says now."""
        row = self._db.read_one(
            "SELECT used_bytes, quota_kind, quota_bytes FROM users WHERE id = ?", (account_id,)
        )
        if row is None:
            return 0, 0
        used, kind, quota = row
        if kind == "none":
            return int(used), None  # type: ignore[call-overload]
        if kind == "bytes":
            return int(used), int(quota)  # type: ignore[call-overload]
        return int(used), self._default  # type: ignore[call-overload]

    def held_by_resumable(self, account_id: str) -> int:
        """What the account's unfinished resumable uploads hold (app/resumable)."""
        row = self._db.read_one(
            "SELECT COALESCE(SUM(reserved), 0) FROM resumable_uploads WHERE owner = ?",
            (account_id,),
        )
        return 0 if row is None else int(row[0])  # type: ignore[call-overload]

    def in_flight(self, account_id: str) -> int:
        return self._held.get(account_id, 0)

    def _grow(self, reservation: Reservation, needed: int) -> None:
        account = reservation.account_id
        used, quota = (0, None) if reservation.unlimited else self.usage(account)
        others = self._held.get(account, 0)
        if quota is None:
            take = max(needed, STEP_BYTES)
        else:
            # Resumable uploads hold space between their requests, in the catalog.
            between = self.held_by_resumable(account)
            room = quota - used - others - between
            if needed > room:
                raise QuotaExceeded(
                    used + others + between, quota, needed, reservation.whose, between
                )
            take = needed
        reservation.held += take
        self._held[account] = others + take

    def _give_back(self, reservation: Reservation) -> None:
        if reservation.held:
            left = self._held.get(reservation.account_id, 0) - reservation.held
            if left > 0:
                self._held[reservation.account_id] = left
            else:
                self._held.pop(reservation.account_id, None)
            reservation.held = 0
