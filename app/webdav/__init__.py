"""WebDAV without HTTP: an account's tree as WebDAV sees it (paths of stored names
onto folders and files, `tree.py`), copy, move and delete over that tree, the write
locks (`locks.py`) and dead properties (`properties.py`) kept in the catalog so every
node sharing it agrees, and the `If` header's conditions (`conditions.py`). The HTTP
and XML side is app/features/dav/."""
