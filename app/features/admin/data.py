"""What other screens may know of the Admin screen: its relay subject."""

# Accounts were created, changed or removed (any node); the Admin screen repaints.
ACCOUNTS_CHANGED = "accounts.changed"
