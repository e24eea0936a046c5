"""Item keys of the single table. ``docs/architecture.md`` lists every item type and access path.

Tenant ids are restricted to ``[A-Za-z0-9_-]``, so ``#`` separates key parts unambiguously even
though code values may contain anything.
"""

import hashlib
import re
from typing import NamedTuple

TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Listing-index partition of all tenants (operators list them; no request path does).
TENANT_CATALOG = "TENANTS"


class TableLayout(NamedTuple):
    """Names fixed by ``template.yaml``; kept in one place so the store and tests agree."""

    available_index: str = "available_v2"
    listing_index: str = "listing"


def code_key(tenant_id: str, value: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}#V#{value}"}, "sk": {"S": "CODE"}}


def number_key(tenant_id: str, number: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}#N#{number}"}, "sk": {"S": "ID"}}


def counter_key(tenant_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}"}, "sk": {"S": "COUNTER#code"}}


def tenant_key(tenant_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}"}, "sk": {"S": "TENANT"}}


def pool_key(tenant_id: str, pool_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}#POOL#{pool_id}"}, "sk": {"S": "POOL"}}


def alias_key(tenant_id: str, protocol: str, alias: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}#ALIAS#{protocol}#{alias}"}, "sk": {"S": "ALIAS"}}


def receipt_key(tenant_id: str, scope: str, key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}#RECEIPT#{scope}#{key}"}, "sk": {"S": "RECEIPT"}}


def recipient_key(
    tenant_id: str, pool_id: str, kind: str, identifier: str
) -> dict[str, dict[str, str]]:
    """How many codes of a pool a recipient was issued. Recipient ids may hold any character,
    so the key carries a digest of them (the item keeps them in clear for operators)."""
    digest = recipient_digest(kind, identifier)
    return {"pk": {"S": f"T#{tenant_id}#P#{pool_id}#RECIPIENT#{digest}"}, "sk": {"S": "RECIPIENT"}}


def recipient_digest(kind: str, identifier: str) -> str:
    return hashlib.sha256(f"{kind}\x00{identifier}".encode()).hexdigest()[:32]


# A hold (reservation) is an attribute of the code per holder, named by the holder's digest: a
# nested map could not be created and added to by one update, and any identifier fits.
HOLD_PREFIX = "hold_"


def hold_attribute(kind: str, identifier: str) -> str:
    return f"{HOLD_PREFIX}{recipient_digest(kind, identifier)}"


def schema_key() -> dict[str, dict[str, str]]:
    """The table's schema version and the progress of a migration (``tools/migrations.py``)."""
    return {"pk": {"S": "SCHEMA"}, "sk": {"S": "SCHEMA"}}


def batch_key(tenant_id: str, batch_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"T#{tenant_id}#BATCH#{batch_id}"}, "sk": {"S": "BATCH"}}


# Failed-validation counters start with their own prefix, not the tenant's, so that IAM can
# let the validate function update these items and no other (``dynamodb:LeadingKeys``).
MISSES_PREFIX = "MISSES#"


def misses_key(tenant_id: str, window_start: int, caller: str) -> dict[str, dict[str, str]]:
    """One caller's failed validations in the window starting at ``window_start`` (epoch
    seconds). The caller is last, so it may contain anything."""
    return {
        "pk": {"S": f"{MISSES_PREFIX}{tenant_id}#{window_start}#{caller}"},
        "sk": {"S": "MISSES"},
    }


# The change stream's own items: a pool's counts and a marker per stream record counted. They
# start with their own prefix, so IAM can let the stream consumer write these and nothing else.
INVENTORY_PREFIX = "INVENTORY#"
COUNTS_SORT_KEY = "COUNTS"
APPLIED_SORT_KEY = "APPLIED"


def pool_counts_key(tenant_id: str, pool_id: str) -> dict[str, dict[str, str]]:
    """A pool's inventory: how many of its codes are in each bucket."""
    return {"pk": {"S": f"{INVENTORY_PREFIX}{tenant_id}#{pool_id}"}, "sk": {"S": COUNTS_SORT_KEY}}


def applied_record_key(record_id: str) -> dict[str, dict[str, str]]:
    """That the stream record ``record_id`` (its eventID) has been counted."""
    return {"pk": {"S": f"{INVENTORY_PREFIX}APPLIED#{record_id}"}, "sk": {"S": APPLIED_SORT_KEY}}


def index_position(value: str) -> str:
    """A code's sort key in the available index: uniformly spread, and stable for a value."""
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


def available_partition(tenant_id: str, pool_id: str, shard: int) -> str:
    return f"T#{tenant_id}#P#{pool_id}#S#{shard}"


def shard_of(position: str, shard_count: int) -> int:
    return int(position[:8], 16) % shard_count


def listing_partition(tenant_id: str, pool_id: str) -> str:
    return f"T#{tenant_id}#L#{pool_id}"


def listing_position(created_at: str, number: int) -> str:
    """Immutable, so a listing cursor never skips or repeats a code that changes meanwhile."""
    return f"{created_at}#{number:019d}"


def pool_catalog_partition(tenant_id: str) -> str:
    """Pools are listed through the listing index too, under one partition per tenant."""
    return f"T#{tenant_id}#POOLS"
