"""Users, logins, roles and API tokens."""
