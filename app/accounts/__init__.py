"""Accounts without HTTP: passwords, sessions, API tokens, quotas, sign-in throttling."""
