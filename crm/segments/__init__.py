"""Saved filters over organizations and contacts."""
