"""File requests: their table and rules (store.py) and the relay topic their pages
follow (events.py). No HTTP: the screens are app/features/requests."""
