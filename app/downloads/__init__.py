"""Serving a stored file's bytes over HTTP: `serve_file` (the one serving code for
every download: files, shares, previews), byte ranges, validators and conditional
requests, the inline-or-attachment policy, and the counting a share link meters its
downloads with. ZIPs (an account's archives, a collection link's whole) are laid out
in `zip_layout.py` and served by `zip_serve.py` with the same ranges, validators and
metering.

HTTP by nature (it takes Stario's Context and Writer), but an engine: it imports the
files table, storage and `app.common`, never `app.features` or the access gate (the
caller decides who may read a file; `serve_file` only serves it).
"""
