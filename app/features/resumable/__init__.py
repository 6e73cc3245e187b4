"""The resumable protocols over the engine in app/resumable: tus 1.0 (/tus/) and the
IETF resumable-uploads draft (/uploads and a file request's link)."""
