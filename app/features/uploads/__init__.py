"""Single-request uploads: Datastar file signals, multipart and raw PUT (/uploads)."""
