"""The real codecs the protocols share: hardened XML, strict JSON, and the error-table mechanism."""
