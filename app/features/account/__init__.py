"""The Account screen: the signed-in person's password, sessions and API tokens."""
