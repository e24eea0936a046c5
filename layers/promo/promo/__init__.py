"""Shared package of the promo-code service: domain, store, codecs, protocols and settings."""

from promo import coldstart

coldstart.begin()  # a handler's imports start here: see promo/coldstart.py
