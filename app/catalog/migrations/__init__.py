"""The catalog's schema as numbered migrations, each written out for both dialects.

`mNNNN_what.py` holds `SQLITE` and `POSTGRES`, the steps of migration NNNN in
order: one statement per string, or a function given the migration's `run` for a step
SQL alone cannot write the same on both (migration 5 names existing files).

Migration 1 is the schema of commit 5707150; 2 to 4 are what changed on main after
it, before versions existed, so each of those also has `FOUND_SQLITE`/`FOUND_POSTGRES`,
a query that counts what it makes, by which a catalog written before versions is
recognised (app/catalog/migrate.py). A migration written since needs none: no catalog
without a version can have it.

A change to the schema is a new module here, added to `MODULES`: never an edit to a
migration that has shipped, whose statements have already run on deployed catalogs.
Imports nothing of the app but app/catalog/names.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from app.catalog.migrations import (
    m0001_initial,
    m0002_files_need_their_owner,
    m0003_resumable_by_request,
    m0004_share_metering,
    m0005_folders,
    m0006_screens,
    m0007_webdav,
)

type Dialect = Literal["sqlite", "postgres"]
# Runs one statement with `?` parameters, returning its rows (app/catalog/migrate.py).
type Run = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]
type Step = str | Callable[[Run], None]

MODULES = (
    m0001_initial,
    m0002_files_need_their_owner,
    m0003_resumable_by_request,
    m0004_share_metering,
    m0005_folders,
    m0006_screens,
    m0007_webdav,
)


# The `found` query of a migration no catalog without a version can have.
NEVER_BEFORE_VERSIONS = "SELECT 0"


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    sqlite: tuple[Step, ...]
    postgres: tuple[Step, ...]
    # A query counting what the migration makes: above 0 when it is there already.
    found_sqlite: str
    found_postgres: str

    def statements(self, dialect: Dialect) -> tuple[Step, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgres

    def found(self, dialect: Dialect) -> str:
        return self.found_sqlite if dialect == "sqlite" else self.found_postgres


def _migration(module: ModuleType) -> Migration:
    number, _, name = module.__name__.rsplit(".", 1)[1].removeprefix("m").partition("_")
    return Migration(
        int(number),
        name,
        tuple(module.SQLITE),
        tuple(module.POSTGRES),
        getattr(module, "FOUND_SQLITE", NEVER_BEFORE_VERSIONS),
        getattr(module, "FOUND_POSTGRES", NEVER_BEFORE_VERSIONS),
    )


MIGRATIONS = tuple(_migration(module) for module in MODULES)
if [m.number for m in MIGRATIONS] != list(range(1, len(MIGRATIONS) + 1)):
    raise RuntimeError("the catalog's migrations must be numbered 1, 2, 3... without gaps")
# The schema version this code writes, and the newest it can open.
LATEST = MIGRATIONS[-1].number
