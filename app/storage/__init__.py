"""Where file bytes live: one `Store` protocol (store.py) over two backends.

- `local/`: files under the data dir (the default);
- `s3/`: objects in an S3 bucket (`--storage s3://BUCKET[/PREFIX]`).

Beside the protocol, what both share: blob and upload ids (ids.py), the errors a
store raises (errors.py), free space and the catalog's reserve file (space.py,
`<data dir>/stowage.reserve`), and the choice of backend (backends.py).

Storage knows nothing of uploads, resumable or not: it never imports `app.ingest`
or `app.resumable` (the resumable engine chooses its own partial backends over
these stores). `s3/` is imported only when S3 is configured: botocore costs a
local server ~30 MB of RSS.
"""
