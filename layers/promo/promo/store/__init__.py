"""The only package that talks to DynamoDB."""

from promo.store.attempts import AttemptStore
from promo.store.catalog import CatalogStore
from promo.store.codes import CodeStore
from promo.store.credentials import CredentialStore
from promo.store.table import Table

__all__ = ["AttemptStore", "CatalogStore", "CodeStore", "CredentialStore", "Table"]
