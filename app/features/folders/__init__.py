"""Folders over HTTP: the JSON API (`/api/folders`, `/api/files/move`)."""
