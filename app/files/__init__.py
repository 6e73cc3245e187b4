"""The files table without HTTP: one row per stored blob (`FileRow`), its queries and
the list's search, filter and order (`FileQuery`), and the relay subject a change
publishes (`FILES_CHANGED`).

Beside `accounts/`, `shares/` and `requests/`: it imports the catalog and nothing of
the engines above it (ingest, resumable, downloads, previews) or of `app.features`.
"""
