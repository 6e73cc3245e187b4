"""What every signed-in screen shares: the masthead with its navigation and sign-out."""
