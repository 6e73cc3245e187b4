"""Migration 1: the catalog exactly as commit 5707150 made it (its five SCHEMA strings,
and on PostgreSQL what its regex translation made of them): files, accounts, tokens,
sessions, share links, file requests and resumable uploads.

Every statement leaves what is already there as it is (IF NOT EXISTS, OR REPLACE): a
catalog written before versions existed is adopted by running these again, which
fills in whatever an older one lacks, and then recording version 1
(app/catalog/migrate.py)."""

# Present in a catalog written before versions existed: the files table.
FOUND_SQLITE = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'files'"
FOUND_POSTGRES = (
    "SELECT count(*) FROM (SELECT to_regclass('files') AS found) t WHERE found IS NOT NULL"
)

SQLITE = [
    """\
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mime TEXT NOT NULL,
    declared_mime TEXT,
    created_at TEXT NOT NULL,
    owner TEXT,
    -- The file request it arrived through (app/requests/store.py), if any.
    request_id TEXT
)
""",
    """\
CREATE INDEX IF NOT EXISTS files_newest ON files (created_at DESC)
""",
    """\
-- One index per order the list can take, each carrying the name and the type, so a
-- search or a type filter walks an index alone (app/files/query.py).
-- IF NOT EXISTS: a catalog made before them gets them at the next start.
CREATE INDEX IF NOT EXISTS files_by_created ON files (owner, created_at, name, mime)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_size ON files (owner, size, name, mime)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_name ON files (owner, name COLLATE NOCASE, mime)
""",
    """\
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    -- 'default' follows --default-quota; 'bytes' is quota_bytes; 'none' is unlimited.
    quota_kind TEXT NOT NULL DEFAULT 'default'
        CHECK (quota_kind IN ('default', 'bytes', 'none')),
    quota_bytes INTEGER,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    file_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
)
""",
    """\
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_used_at TEXT
)
""",
    """\
CREATE INDEX IF NOT EXISTS tokens_by_user ON tokens (user_id)
""",
    """\
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
)
""",
    """\
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, created_at DESC)
""",
    """\
-- Usage follows the files table whoever writes it (the server, or the CLI while
-- it runs), in the same transaction as the row itself.
CREATE TRIGGER IF NOT EXISTS usage_on_insert AFTER INSERT ON files BEGIN
    UPDATE users SET used_bytes = used_bytes + NEW.size, file_count = file_count + 1
    WHERE id = NEW.owner;
END;
""",
    """\
CREATE TRIGGER IF NOT EXISTS usage_on_delete AFTER DELETE ON files BEGIN
    UPDATE users SET used_bytes = used_bytes - OLD.size, file_count = file_count - 1
    WHERE id = OLD.owner;
END;
""",
    """\
CREATE TRIGGER IF NOT EXISTS usage_on_owner_change AFTER UPDATE OF owner ON files BEGIN
    UPDATE users SET used_bytes = used_bytes - OLD.size, file_count = file_count - 1
    WHERE id = OLD.owner;
    UPDATE users SET used_bytes = used_bytes + NEW.size, file_count = file_count + 1
    WHERE id = NEW.owner;
END;
""",
    """\
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    file_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    password_hash TEXT,
    -- Unix seconds; NULL expires_at never expires, NULL max_downloads has no limit.
    expires_at REAL,
    max_downloads INTEGER,
    downloads INTEGER NOT NULL DEFAULT 0,
    revoked_at REAL,
    created_at REAL NOT NULL
)
""",
    """\
CREATE INDEX IF NOT EXISTS shares_by_owner ON shares (owner)
""",
    """\
CREATE INDEX IF NOT EXISTS shares_by_file ON shares (file_id)
""",
    """\
CREATE TRIGGER IF NOT EXISTS shares_end_with_file AFTER DELETE ON files BEGIN
    DELETE FROM shares WHERE file_id = OLD.id;
END;
""",
    """\
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    label TEXT NOT NULL,
    -- Unix seconds; NULL expires_at never expires, NULL limits have no limit.
    expires_at REAL,
    max_files INTEGER,
    max_file_bytes INTEGER,
    files INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    closed_at REAL
)
""",
    """\
CREATE INDEX IF NOT EXISTS requests_by_owner ON requests (owner)
""",
    """\
CREATE TRIGGER IF NOT EXISTS requests_end_with_account AFTER DELETE ON users BEGIN
    DELETE FROM requests WHERE owner = OLD.id;
END;
""",
    """\
CREATE TRIGGER IF NOT EXISTS requests_count_files AFTER INSERT ON files
WHEN NEW.request_id IS NOT NULL BEGIN
    UPDATE requests SET files = files + 1 WHERE id = NEW.request_id;
END;
""",
    """\
CREATE TABLE IF NOT EXISTS resumable_uploads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    -- The file request it arrives through, if any (its uploader is not the owner).
    request_id TEXT,
    name TEXT NOT NULL,
    declared_mime TEXT,
    -- tus Upload-Metadata as the client sent it, echoed on HEAD.
    metadata TEXT,
    -- NULL while the length is deferred.
    length INTEGER,
    offset INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    -- 'whole' becomes a file when complete; 'partial' waits for a tus final upload.
    kind TEXT NOT NULL DEFAULT 'whole',
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    -- Where its bytes go once complete; then file_id is set.
    blob_id TEXT NOT NULL,
    file_id TEXT
)
""",
    """\
CREATE INDEX IF NOT EXISTS resumable_by_owner ON resumable_uploads (owner)
""",
    """\
CREATE INDEX IF NOT EXISTS resumable_by_expiry ON resumable_uploads (expires_at)
""",
    """\
CREATE TRIGGER IF NOT EXISTS resumable_end_with_account AFTER DELETE ON users BEGIN
    DELETE FROM resumable_uploads WHERE owner = OLD.id;
END;
""",
    """\
-- On S3 storage (app/resumable/partials/s3.py): the multipart upload at the blob's
-- key that holds an unfinished upload's parts. Invariant, kept by recording parts,
-- tail and the upload's offset in one transaction: offset = the recorded parts'
-- sizes + the tail's (resumable_tails).
CREATE TABLE IF NOT EXISTS resumable_s3 (
    upload_id TEXT PRIMARY KEY,
    blob_id TEXT NOT NULL,
    multipart_id TEXT NOT NULL,
    -- Part numbers are taken from here, one at a time, so two nodes appending to
    -- the same upload (a stale request and its successor) never share one.
    next_part INTEGER NOT NULL,
    created_at REAL NOT NULL,
    -- The node appending now, until when (renewed with every part): a node asked
    -- about the upload meanwhile asks it to end that append first.
    appending_node TEXT,
    appending_until REAL
)
""",
    """\
-- The tail: the bytes after the last recorded part (less than a part: S3 parts but
-- the last are 5 MiB at least), held here until an append fills a part, in pieces
-- in order (an append that sends no part adds its bytes as one more piece, rather
-- than writing the whole tail again).
CREATE TABLE IF NOT EXISTS resumable_tails (
    upload_id TEXT NOT NULL,
    piece INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (upload_id, piece)
)
""",
    """\
CREATE TABLE IF NOT EXISTS resumable_parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
)
""",
]

POSTGRES = [
    """\
CREATE COLLATION IF NOT EXISTS nocase
    (provider = icu, locale = 'und-u-ks-level2', deterministic = false)
""",
    """\
CREATE TABLE IF NOT EXISTS files (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    mime TEXT NOT NULL,
    declared_mime TEXT,
    created_at TEXT NOT NULL,
    owner TEXT,
    request_id TEXT
)
""",
    """\
CREATE INDEX IF NOT EXISTS files_newest ON files (created_at DESC)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_created ON files (owner, created_at, name, mime)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_size ON files (owner, size, name, mime)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_name ON files (owner, name COLLATE NOCASE, mime)
""",
    """\
CREATE TABLE IF NOT EXISTS users (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin BIGINT NOT NULL DEFAULT 0,
    quota_kind TEXT NOT NULL DEFAULT 'default'
        CHECK (quota_kind IN ('default', 'bytes', 'none')),
    quota_bytes BIGINT,
    used_bytes BIGINT NOT NULL DEFAULT 0,
    file_count BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
)
""",
    """\
CREATE TABLE IF NOT EXISTS tokens (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_used_at TEXT
)
""",
    """\
CREATE INDEX IF NOT EXISTS tokens_by_user ON tokens (user_id)
""",
    """\
CREATE TABLE IF NOT EXISTS sessions (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
)
""",
    """\
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id)
""",
    """\
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, created_at DESC)
""",
    """\
CREATE TABLE IF NOT EXISTS shares (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    file_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    password_hash TEXT,
    expires_at DOUBLE PRECISION,
    max_downloads BIGINT,
    downloads BIGINT NOT NULL DEFAULT 0,
    revoked_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL
)
""",
    """\
CREATE INDEX IF NOT EXISTS shares_by_owner ON shares (owner)
""",
    """\
CREATE INDEX IF NOT EXISTS shares_by_file ON shares (file_id)
""",
    """\
CREATE TABLE IF NOT EXISTS requests (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    label TEXT NOT NULL,
    expires_at DOUBLE PRECISION,
    max_files BIGINT,
    max_file_bytes BIGINT,
    files BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION
)
""",
    """\
CREATE INDEX IF NOT EXISTS requests_by_owner ON requests (owner)
""",
    """\
CREATE TABLE IF NOT EXISTS resumable_uploads (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    request_id TEXT,
    name TEXT NOT NULL,
    declared_mime TEXT,
    metadata TEXT,
    length BIGINT,
    "offset" BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'whole',
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    blob_id TEXT NOT NULL,
    file_id TEXT
)
""",
    """\
CREATE INDEX IF NOT EXISTS resumable_by_owner ON resumable_uploads (owner)
""",
    """\
CREATE INDEX IF NOT EXISTS resumable_by_expiry ON resumable_uploads (expires_at)
""",
    """\
CREATE TABLE IF NOT EXISTS resumable_s3 (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    upload_id TEXT PRIMARY KEY,
    blob_id TEXT NOT NULL,
    multipart_id TEXT NOT NULL,
    next_part BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    appending_node TEXT,
    appending_until DOUBLE PRECISION
)
""",
    """\
CREATE TABLE IF NOT EXISTS resumable_tails (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    upload_id TEXT NOT NULL,
    piece BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (upload_id, piece)
)
""",
    """\
CREATE TABLE IF NOT EXISTS resumable_parts (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    upload_id TEXT NOT NULL,
    part_number BIGINT NOT NULL,
    etag TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
)
""",
    """\
CREATE OR REPLACE FUNCTION stowage_usage_on_insert()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET used_bytes = used_bytes + NEW.size, file_count = file_count + 1
        WHERE id = NEW.owner;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER usage_on_insert AFTER INSERT ON files FOR EACH ROW
    EXECUTE FUNCTION stowage_usage_on_insert()
""",
    """\
CREATE OR REPLACE FUNCTION stowage_usage_on_delete()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET used_bytes = used_bytes - OLD.size, file_count = file_count - 1
        WHERE id = OLD.owner;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER usage_on_delete AFTER DELETE ON files FOR EACH ROW
    EXECUTE FUNCTION stowage_usage_on_delete()
""",
    """\
CREATE OR REPLACE FUNCTION stowage_usage_on_owner_change()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET used_bytes = used_bytes - OLD.size, file_count = file_count - 1
        WHERE id = OLD.owner;
    UPDATE users SET used_bytes = used_bytes + NEW.size, file_count = file_count + 1
        WHERE id = NEW.owner;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER usage_on_owner_change AFTER UPDATE OF owner ON files FOR EACH ROW
    EXECUTE FUNCTION stowage_usage_on_owner_change()
""",
    """\
CREATE OR REPLACE FUNCTION stowage_shares_end_with_file()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM shares
        WHERE file_id = OLD.id;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER shares_end_with_file AFTER DELETE ON files FOR EACH ROW
    EXECUTE FUNCTION stowage_shares_end_with_file()
""",
    """\
CREATE OR REPLACE FUNCTION stowage_requests_end_with_account()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM requests
        WHERE owner = OLD.id;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER requests_end_with_account AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION stowage_requests_end_with_account()
""",
    """\
CREATE OR REPLACE FUNCTION stowage_requests_count_files()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE requests SET files = files + 1
        WHERE id = NEW.request_id;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER requests_count_files AFTER INSERT ON files FOR EACH ROW
    WHEN (NEW.request_id IS NOT NULL)
    EXECUTE FUNCTION stowage_requests_count_files()
""",
    """\
CREATE OR REPLACE FUNCTION stowage_resumable_end_with_account()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM resumable_uploads
        WHERE owner = OLD.id;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER resumable_end_with_account AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION stowage_resumable_end_with_account()
""",
]
