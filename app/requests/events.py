"""The relay topic of an account's file requests: whoever changes them (the
requests API, the intake receiving a file through a link, the resumable engine)
publishes here; pages subscribe to repaint their "File requests" list."""

# Published when an account's file requests change (made, closed, a file received,
# an unfinished upload through one made, moved on or ended); its pages repaint their
# "File requests" list.
REQUESTS_CHANGED = "requests.changed"


def requests_changed(owner: str) -> str:
    return f"{REQUESTS_CHANGED}.{owner}"
