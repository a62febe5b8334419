"""Matching: published rules stored by version, results per enterprise × rule, kept current."""
