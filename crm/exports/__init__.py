"""Exports: the rows and file writers, the download routes and the `crm export` commands."""
