"""ZIP archives of many files: POST /api/archives, then GET /api/archives/{token}
(ranged, so a download resumes)."""
