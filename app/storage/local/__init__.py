"""The local backend: blobs as files under `<data dir>/uploads/` (the root).

What lies there, and who writes it:

- `<id[:2]>/<id>`: one committed blob per file, named by its 22-character blob id
  (app/storage/ids.py) in a shard directory of the id's first two characters;
  written by writer.py, sent by store.py. A blob file without a catalog row is an
  orphan, reclaimed at start and by the running sweep (app/ops/sweep.py).
- `.incoming/<id>.part`: a blob being written that outgrew one hand-over to the
  writer threads (4 MiB); fsynced and renamed into its shard on commit. A small
  blob (every byte in hand at its first disk work) is written straight under its
  final name instead. Leftovers older than an hour are removed at start (`prepare`).
- `.thumbs/<id[:2]>/<id>.webp`, or an empty `<id>.none` (no thumbnail can be
  made), and beside them the preview's `<id>.view.jpg` (an upright rendition) or an
  empty `<id>.view.same` (the original shows as it is) or `<id>.view.none` (none can
  be made): what app/previews derived from a blob; removed with it.
- `.resumable/<upload id>`: the bytes of an unfinished resumable upload, one file
  per upload named by its 32-character upload id (partials.py); renamed into the
  blob's shard when the upload completes.

Blob and partial files are created 0600, and a blob's name is made durable (its
directory fsynced, or the filesystem synced for a round of small blobs) before its
catalog row commits.
"""
