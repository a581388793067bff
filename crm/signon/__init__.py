"""Public sign-on pages."""
