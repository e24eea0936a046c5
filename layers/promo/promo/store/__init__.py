"""The only package that talks to DynamoDB."""

from functools import cache

from promo.settings import get_settings
from promo.store.attempts import AttemptStore
from promo.store.catalog import CatalogStore
from promo.store.client import dynamodb
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore
from promo.store.table import Table

__all__ = [
    "AttemptStore",
    "CatalogStore",
    "CodeStore",
    "CredentialStore",
    "Table",
    "attempt_store",
    "catalog_store",
    "code_store",
    "credential_store",
]


@cache
def _table() -> Table:
    return Table(dynamodb(), get_settings().table_name)


@cache
def code_store() -> CodeStore:
    """The process-wide code store: one client and one candidate cache per warm function."""
    return CodeStore(_table(), get_settings())


@cache
def catalog_store() -> CatalogStore:
    return CatalogStore(_table(), get_settings())


@cache
def credential_store() -> CredentialStore:
    return CredentialStore(_table(), get_settings())


@cache
def attempt_store() -> AttemptStore:
    return AttemptStore(_table())
