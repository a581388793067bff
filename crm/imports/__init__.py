"""Importing spreadsheets and signatory blocks."""
