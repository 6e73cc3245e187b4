"""The catalog: every row the app keeps (files, accounts, tokens, sessions, share
links, file requests, resumable uploads), in SQLite or PostgreSQL.

- protocol.py: the `Database` protocol the rest of the app codes against, and the
  errors it tells apart (unavailable, disk full, owner gone);
- sqlite.py, postgres.py: the two catalogs; group_commit.py, what they share;
- migrations/: the schema, numbered migrations written for both dialects;
  migrate.py applies them and records the schema version;
- open.py: opening the catalog `--database` names, and the guards around it.

Below the domain tables (app/files, accounts, shares, requests, resumable) and above
app/config.py only: it imports no other part of the app.
"""
