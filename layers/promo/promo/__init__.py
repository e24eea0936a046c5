"""Shared package of the promo-code service: domain, store, codecs, auth and settings."""
