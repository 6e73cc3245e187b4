"""File requests: the owner's API and panel (/api/requests) and the link's page (/r/{token})."""
