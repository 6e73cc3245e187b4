"""Migration 4: share links meter bytes (app/shares/store.py): what has left, what
downloads under way hold, and until when. A link made before metering counted whole
downloads only: those copies are what has left."""

_SENT_BEFORE_METERING = (
    "UPDATE shares SET sent_bytes = downloads * (SELECT size FROM files WHERE files.id ="
    " shares.file_id) WHERE sent_bytes = 0 AND downloads > 0"
)

SQLITE = [
    "ALTER TABLE shares ADD COLUMN sent_bytes INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE shares ADD COLUMN reserved_bytes INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE shares ADD COLUMN held_until REAL",
    _SENT_BEFORE_METERING,
]

POSTGRES = [
    "ALTER TABLE shares ADD COLUMN sent_bytes BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE shares ADD COLUMN reserved_bytes BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE shares ADD COLUMN held_until DOUBLE PRECISION",
    _SENT_BEFORE_METERING,
]

# Present in a catalog written before versions existed (main after 5707150).
FOUND_SQLITE = "SELECT count(*) FROM pragma_table_info('shares') WHERE name = 'sent_bytes'"
FOUND_POSTGRES = (
    "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('shares')"
    " AND attname = 'sent_bytes' AND NOT attisdropped"
)
