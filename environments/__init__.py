"""Teacher environments (placeholder during the move)."""
