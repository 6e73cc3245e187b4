"""The `stowage` command: `serve` (main.py), the account commands (accounts.py),
`check` and `backup` (ops.py), and the flags that say where the catalog and the blobs
are (storage.py).

The account and ops commands open the catalog through app/catalog/ and the blobs
through app/storage/; only `serve` imports the web app (app/main.py), lazily.
"""
