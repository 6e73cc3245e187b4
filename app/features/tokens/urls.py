from stario import Route

API_TOKENS = Route("GET /api/tokens")
API_TOKEN_CREATE = Route("POST /api/tokens")
API_TOKEN_REVOKE = Route("DELETE /api/tokens/{token_id}")
