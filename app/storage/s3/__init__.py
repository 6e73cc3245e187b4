"""The S3 backend: blobs as objects in a bucket (`--storage s3://BUCKET[/PREFIX]`).

What lies in the bucket, under the key prefix (`PREFIX/`, or nothing):

- `<prefix><blob id>`: one object per committed blob, named by its 22-character
  blob id (app/storage/ids.py); an object exists only once complete. An object
  without a catalog row is an orphan (`stowage check --repair`).
- Multipart uploads at the same keys: a single-request upload larger than one part
  (8 MiB) while it streams (aborted on any failure), and every unfinished resumable
  upload, from its creation until it completes (app/resumable/partials/s3.py; its
  parts and its short tail are recorded in the catalog, so any node goes on).
  `stowage check --repair` aborts those no upload holds.

What lies on the local disk, under `<data dir>/uploads/`:

- `.thumbs/<id[:2]>/<id>.webp` or `<id>.none`: thumbnails, and `<id>.view.jpg`,
  `<id>.view.same` or `<id>.view.none`: previews' renditions; a local cache;
- `.s3-parts/`: the temp files parts gather in, unlinked from birth, so it stays
  empty (parts.py);
- and, while a thumbnail is made, a temp copy of the object in the system's temp
  dir (`stowage-s3-*`).

Importing this package loads no botocore; its modules do (store.py), so only code
that runs with S3 configured imports them.
"""
