"""Share links without HTTP: their table, hashed tokens, expiry, passwords, download
limits and metering (store.py). The screens are app/features/shares."""
