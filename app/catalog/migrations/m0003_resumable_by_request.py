"""Migration 3: a file request counts (and its owner sees) the unfinished uploads made
through it, by this index."""

SQLITE = [
    "CREATE INDEX IF NOT EXISTS resumable_by_request ON resumable_uploads (request_id)",
]

POSTGRES = [
    "CREATE INDEX IF NOT EXISTS resumable_by_request ON resumable_uploads (request_id)",
]

# Present in a catalog written before versions existed (main after 5707150).
FOUND_SQLITE = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'resumable_by_request'"
)
FOUND_POSTGRES = (
    "SELECT count(*) FROM (SELECT to_regclass('resumable_by_request') AS found) t"
    " WHERE found IS NOT NULL"
)
