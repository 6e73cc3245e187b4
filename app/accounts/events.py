"""The relay topic of an account's sign-in sessions: whoever starts, touches or ends
one publishes here; the Account screen subscribes to repaint its "Sessions" list (on
every node: app/cluster.py carries relay subjects across)."""

SESSIONS_CHANGED = "sessions.changed"


def sessions_changed(account_id: str) -> str:
    return f"{SESSIONS_CHANGED}.{account_id}"
