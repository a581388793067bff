"""Benchmarks: a data generator and the organization-list filter benchmark."""
