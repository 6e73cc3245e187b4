"""API tokens: made, listed and revoked on the page and by /api/tokens."""
