"""The local backend: blobs as files under `<data dir>/uploads/` (the root).

What lies there, and who writes it:

- `<id[:2]>/<id>`: one committed blob per file, named by its 22-character blob id
  (app/storage/ids.py) in a shard directory of the id's first two characters;
  written by writer.py, sent by store.py. A blob file without a catalog row is an
  orphan, removed at start and by the sweep (app/ops/sweep.py).
- `.incoming/<id>.part`: a blob too large to write in one go while it is written;
  fsynced and renamed into its shard on commit. A small blob (every byte in hand at
  its first disk work) is written straight under its final name instead. Leftovers
  older than an hour are removed at start (`prepare`).
- `.thumbs/<id[:2]>/<id>.webp`, or an empty `<id>.none` (no thumbnail can be
  made): what app/previews derived from a blob; removed with it.
- `.resumable/<upload id>`: the bytes of an unfinished resumable upload, one file
  per upload named by its 32-character upload id (partials.py); renamed into the
  blob's shard when the upload completes.

Every file is 0600; every rename and new name is made durable (the directory
fsynced) before a blob is said to exist.
"""
