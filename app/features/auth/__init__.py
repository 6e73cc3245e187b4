"""Signing in and out, and the first run's setup link: /login, /logout, /setup."""
