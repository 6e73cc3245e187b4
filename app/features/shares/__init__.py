"""Share links: the owner's API and panel (/api/shares) and the public page (/s/{token})."""
