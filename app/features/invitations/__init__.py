"""The one-time links an admin hands out: `/invite?token=...` makes an account once,
`/reset?token=...` sets an account's password once. Public pages, like /setup."""
