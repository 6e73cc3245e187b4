"""Migration 2: a file row never outlives its account. An upload that ends after its
account was removed fails to commit (and its blob goes), instead of leaving a row
owned by nobody; the message is OWNER_GONE (app/catalog/protocol.py)."""

SQLITE = [
    """\
CREATE TRIGGER IF NOT EXISTS files_need_their_owner AFTER INSERT ON files
WHEN NEW.owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.owner) BEGIN
    SELECT RAISE(ABORT, 'stowage: the account that owns the file has been removed');
END;
""",
]

POSTGRES = [
    # FOR KEY SHARE: an account being removed (its row deleted first) makes this wait
    # for the removal, then find no row.
    """\
CREATE OR REPLACE FUNCTION stowage_files_need_their_owner()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM users WHERE id = NEW.owner FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stowage: the account that owns the file has been removed'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$
""",
    """\
CREATE OR REPLACE TRIGGER files_need_their_owner AFTER INSERT ON files FOR EACH ROW
    WHEN (NEW.owner IS NOT NULL)
    EXECUTE FUNCTION stowage_files_need_their_owner()
""",
]

# Present in a catalog written before versions existed (main after 5707150).
FOUND_SQLITE = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'files_need_their_owner'"
)
FOUND_POSTGRES = (
    "SELECT count(*) FROM pg_trigger WHERE tgname = 'files_need_their_owner'"
    " AND tgrelid = to_regclass('files')"
)
