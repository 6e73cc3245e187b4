"""A person's own files: the list (/api/files), download, rename, delete."""
