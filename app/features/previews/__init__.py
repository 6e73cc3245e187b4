"""Thumbnails of stored images: /files/{id}/thumbnail."""
