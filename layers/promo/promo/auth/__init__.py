"""Credentials: how secrets are stored (hashes only) and checked (constant time)."""
