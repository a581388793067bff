"""The home page after login."""
