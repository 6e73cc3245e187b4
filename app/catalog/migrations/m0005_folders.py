"""Migration 5: folders. Every file lives in one folder of its account; `folder_id`
'' is the account's root (so no root row is needed and a file written by older code,
or by a script, lands there). A folder's `parent` is '' at the top.

Names are unique within a folder ignoring case: `name_key` is the name case-folded by
Python (`app/catalog/names.py`, Unicode-aware, the same on both catalogs), and a unique
index over (owner, folder, name_key) decides races between nodes. Files and folders
of one parent are kept apart by the app in the same transaction.

A folder's own `size` and `files` count the files directly in it and are kept by
triggers in the transaction that adds, removes or moves a file, so they are exact
under concurrent uploads on any node; totals over a subtree are summed on demand
(app/folders/store.py), which keeps moving a folder one row's update whatever it holds.

Uploads keep their place: a resumable upload records the folder it goes to and the
folders under it named by its relative path (`directory`, "a/b"), and whether it may
replace a file of the same name. A file request can target a folder.

Collections: a share link is of one file (`kind` 'file', as before), of a folder and
everything under it ('folder', `folder_id`), or of a selection of files ('files', its
rows in `share_files`). A folder link may take uploads through a file request of its
own (`request_id`), which holds the limits. A removed folder ends its links, a removed
file leaves every selection, and an account's folders go with it.

Existing catalogs: every file is in its owner's root already ('' by default); names
that clash there ignoring case are given deterministic suffixes, the oldest file
(by created_at, then id) keeping its name: "a.txt", "a (2).txt", ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.catalog.names import name_key, unique_names

if TYPE_CHECKING:
    from app.catalog.migrations import Run, Step


def name_existing_files(run: Run) -> None:
    """Fill `name_key` and give clashing names in each owner's root their suffixes."""
    rows = run("SELECT id, owner, name FROM files ORDER BY owner, created_at, id", ())
    by_owner: dict[object, list[tuple[str, str]]] = {}
    for file_id, owner, name in rows:
        by_owner.setdefault(owner, []).append((str(file_id), str(name)))
    for files in by_owner.values():
        names = unique_names([name for _, name in files])
        for (file_id, old), new in zip(files, names, strict=True):
            if new != old:
                run(
                    "UPDATE files SET name = ?, name_key = ? WHERE id = ?",
                    (new, name_key(new), file_id),
                )
            else:
                run("UPDATE files SET name_key = ? WHERE id = ?", (name_key(new), file_id))


_FOLDERS = """\
CREATE TABLE folders ({rowid}
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    size {int} NOT NULL DEFAULT 0,
    files {int} NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
)"""

_COMMON_BEFORE = [
    "ALTER TABLE files ADD COLUMN folder_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE files ADD COLUMN name_key TEXT",
    "ALTER TABLE resumable_uploads ADD COLUMN folder_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE resumable_uploads ADD COLUMN directory TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE resumable_uploads ADD COLUMN replace_existing INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN folder_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE shares ADD COLUMN kind TEXT NOT NULL DEFAULT 'file'",
    "ALTER TABLE shares ADD COLUMN folder_id TEXT",
    "ALTER TABLE shares ADD COLUMN request_id TEXT",
    "CREATE TABLE share_files (share_id TEXT NOT NULL, file_id TEXT NOT NULL,"
    " PRIMARY KEY (share_id, file_id))",
]

_COMMON_AFTER = [
    "CREATE INDEX share_files_by_file ON share_files (file_id)",
    "CREATE INDEX shares_by_folder ON shares (folder_id)",
    "CREATE UNIQUE INDEX folders_by_name ON folders (owner, parent, name_key)",
    "CREATE INDEX folders_by_parent ON folders (parent)",
    "CREATE INDEX folders_by_owner ON folders (owner, name_key)",
    "CREATE UNIQUE INDEX files_by_folder_name ON files (owner, folder_id, name_key)",
    # The folder page's list in each of its orders, from an index that carries the
    # name and the type as the account-wide ones do (app/files/query.py).
    "CREATE INDEX files_in_folder_by_created ON files (folder_id, created_at, name, mime)",
    "CREATE INDEX files_in_folder_by_size ON files (folder_id, size, name, mime)",
]

SQLITE: list[Step] = [
    *_COMMON_BEFORE,
    _FOLDERS.format(int="INTEGER", rowid=""),
    name_existing_files,
    *_COMMON_AFTER,
    "CREATE INDEX files_in_folder_by_name ON files (folder_id, name COLLATE NOCASE, mime)",
    """\
CREATE TRIGGER files_need_their_folder AFTER INSERT ON files
WHEN NEW.folder_id != '' AND NOT EXISTS
    (SELECT 1 FROM folders WHERE id = NEW.folder_id AND owner = NEW.owner) BEGIN
    SELECT RAISE(ABORT, 'stowage: the folder has been removed');
END""",
    # PostgreSQL's two delete triggers of migration 1 become one per statement below;
    # SQLite has row triggers only: the same two again, as they were.
    "DROP TRIGGER IF EXISTS usage_on_delete",
    """\
CREATE TRIGGER usage_on_delete AFTER DELETE ON files BEGIN
    UPDATE users SET used_bytes = used_bytes - OLD.size, file_count = file_count - 1
    WHERE id = OLD.owner;
END""",
    "DROP TRIGGER IF EXISTS shares_end_with_file",
    """\
CREATE TRIGGER shares_end_with_file AFTER DELETE ON files BEGIN
    DELETE FROM shares WHERE file_id = OLD.id;
END""",
    """\
CREATE TRIGGER folders_end_with_account AFTER DELETE ON users BEGIN
    DELETE FROM folders WHERE owner = OLD.id;
END""",
    """\
CREATE TRIGGER files_leave_selections AFTER DELETE ON files BEGIN
    DELETE FROM share_files WHERE file_id = OLD.id;
END""",
    """\
CREATE TRIGGER shares_end_with_folder AFTER DELETE ON folders BEGIN
    DELETE FROM shares WHERE folder_id = OLD.id;
END""",
    """\
CREATE TRIGGER files_and_folders_take_turns AFTER INSERT ON files
WHEN EXISTS (SELECT 1 FROM folders
    WHERE owner = NEW.owner AND parent = NEW.folder_id AND name_key = NEW.name_key) BEGIN
    SELECT RAISE(ABORT, 'stowage: the name is taken by a folder');
END""",
    """\
CREATE TRIGGER folder_usage_on_insert AFTER INSERT ON files WHEN NEW.folder_id != '' BEGIN
    UPDATE folders SET size = size + NEW.size, files = files + 1 WHERE id = NEW.folder_id;
END""",
    """\
CREATE TRIGGER folder_usage_on_delete AFTER DELETE ON files WHEN OLD.folder_id != '' BEGIN
    UPDATE folders SET size = size - OLD.size, files = files - 1 WHERE id = OLD.folder_id;
END""",
    """\
CREATE TRIGGER folder_usage_on_move AFTER UPDATE OF folder_id ON files
WHEN OLD.folder_id != NEW.folder_id BEGIN
    UPDATE folders SET size = size - OLD.size, files = files - 1 WHERE id = OLD.folder_id;
    UPDATE folders SET size = size + NEW.size, files = files + 1 WHERE id = NEW.folder_id;
    SELECT RAISE(ABORT, 'stowage: the folder has been removed')
    WHERE NEW.folder_id != '' AND NOT EXISTS
        (SELECT 1 FROM folders WHERE id = NEW.folder_id AND owner = NEW.owner);
END""",
]

POSTGRES: list[Step] = [
    *_COMMON_BEFORE,
    _FOLDERS.format(
        int="BIGINT", rowid="\n    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,"
    ),
    name_existing_files,
    *_COMMON_AFTER,
    "CREATE INDEX files_in_folder_by_name ON files (folder_id, name COLLATE nocase, mime)",
    # FOR KEY SHARE, as files_need_their_owner: a folder being removed on another
    # node (its rows locked first) makes this wait for the removal, then find none.
    """\
CREATE OR REPLACE FUNCTION stowage_files_need_their_folder()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM folders WHERE id = NEW.folder_id AND owner = NEW.owner FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stowage: the folder has been removed'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER files_need_their_folder AFTER INSERT ON files FOR EACH ROW
    WHEN (NEW.folder_id != '') EXECUTE FUNCTION stowage_files_need_their_folder()""",
    """\
CREATE OR REPLACE FUNCTION stowage_folders_end_with_account()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM folders WHERE owner = OLD.id;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER folders_end_with_account AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION stowage_folders_end_with_account()""",
    # What a delete of files sets off runs once per statement, over every row it
    # removed (`gone`), not once per row: deleting a folder of 12,249 files took 1.6 s
    # of per-row plpgsql (bench folders). Migration 1's two such triggers too.
    "DROP TRIGGER IF EXISTS usage_on_delete ON files",
    """\
CREATE OR REPLACE FUNCTION stowage_usage_on_delete_all()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET used_bytes = users.used_bytes - g.size,
        file_count = users.file_count - g.files
        FROM (SELECT owner, sum(size) AS size, count(*) AS files FROM gone GROUP BY owner) g
        WHERE users.id = g.owner;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER usage_on_delete AFTER DELETE ON files REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION stowage_usage_on_delete_all()""",
    "DROP TRIGGER IF EXISTS shares_end_with_file ON files",
    """\
CREATE OR REPLACE FUNCTION stowage_shares_end_with_files()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM shares WHERE file_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER shares_end_with_file AFTER DELETE ON files REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION stowage_shares_end_with_files()""",
    """\
CREATE OR REPLACE FUNCTION stowage_files_leave_selections()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM share_files WHERE file_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER files_leave_selections AFTER DELETE ON files REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION stowage_files_leave_selections()""",
    """\
CREATE OR REPLACE FUNCTION stowage_shares_end_with_folder()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM shares WHERE folder_id = OLD.id;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER shares_end_with_folder AFTER DELETE ON folders FOR EACH ROW
    EXECUTE FUNCTION stowage_shares_end_with_folder()""",
    """\
CREATE OR REPLACE FUNCTION stowage_files_and_folders_take_turns()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM folders WHERE owner = NEW.owner AND parent = NEW.folder_id
               AND name_key = NEW.name_key) THEN
        RAISE EXCEPTION 'stowage: the name is taken by a folder'
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER files_and_folders_take_turns AFTER INSERT ON files FOR EACH ROW
    EXECUTE FUNCTION stowage_files_and_folders_take_turns()""",
    """\
CREATE OR REPLACE FUNCTION stowage_folder_usage()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.folder_id != '' THEN
        UPDATE folders SET size = size - OLD.size, files = files - 1 WHERE id = OLD.folder_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.folder_id != '' THEN
        UPDATE folders SET size = size + NEW.size, files = files + 1
            WHERE id = NEW.folder_id AND owner = NEW.owner;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'stowage: the folder has been removed'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER folder_usage_on_insert AFTER INSERT ON files
    FOR EACH ROW EXECUTE FUNCTION stowage_folder_usage()""",
    """\
CREATE OR REPLACE FUNCTION stowage_folder_usage_on_delete_all()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE folders SET size = folders.size - g.size, files = folders.files - g.files
        FROM (SELECT folder_id, sum(size) AS size, count(*) AS files FROM gone
              WHERE folder_id != '' GROUP BY folder_id) g
        WHERE folders.id = g.folder_id;
    RETURN NULL;
END $$""",
    """\
CREATE OR REPLACE TRIGGER folder_usage_on_delete AFTER DELETE ON files REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION stowage_folder_usage_on_delete_all()""",
    """\
CREATE OR REPLACE TRIGGER folder_usage_on_move AFTER UPDATE OF folder_id ON files
    FOR EACH ROW WHEN (OLD.folder_id IS DISTINCT FROM NEW.folder_id)
    EXECUTE FUNCTION stowage_folder_usage()""",
]
