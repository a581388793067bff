"""Shared building blocks: column types, text helpers, access control, Markdown."""
