"""Tenants, pools and the aliases by which each protocol names a pool."""

from datetime import datetime
from uuid import UUID

from promo.cache import TtlCache
from promo.domain import clock
from promo.domain.errors import ConcurrentChange, InvalidRequest
from promo.domain.models import Pool, Tenant
from promo.settings import Settings
from promo.store import keys
from promo.store.items import Item, pool_from_item, pool_to_item, s
from promo.store.table import ConditionFailed, Table, TransactionCancelled

# On a tenant's item while its case rule is being switched: until when (``begin_case_switch``).
_SWITCH = "case_switch_until"


def pool_aliases(pool: Pool) -> list[tuple[str, str]]:
    """Every (protocol, alias) that names ``pool``; each must be unique within the tenant."""
    aliases = pool.aliases
    named: list[tuple[str, str]] = []
    if aliases.maestra_external_id is not None:
        named.append(("maestra", aliases.maestra_external_id))
    if aliases.synctv_offer_id is not None:
        named.append(("synctv", str(aliases.synctv_offer_id)))
    if aliases.mews_voucher_id is not None:
        named.append(("mews", str(aliases.mews_voucher_id)))
    campaign = aliases.crm_campaign
    if campaign is not None:
        named.append(("crm-id", campaign.id))
        named.append(("crm-name", campaign.name))
        if campaign.alternative_code is not None:
            named.append(("crm-alternative-code", campaign.alternative_code))
    return named


class CatalogStore:
    def __init__(self, table: Table, settings: Settings) -> None:
        self._table = table
        self._pools: TtlCache[tuple[str, str], Pool | None] = TtlCache(
            settings.config_cache_seconds
        )
        self._aliases: TtlCache[tuple[str, str, str], str | None] = TtlCache(
            settings.config_cache_seconds
        )
        self._tenants: TtlCache[str, Tenant | None] = TtlCache(settings.config_cache_seconds)

    def put_tenant(self, tenant: Tenant) -> None:
        """Write ``tenant`` as it is; a switch of its case rule goes through
        ``begin_case_switch`` (``services.tenants.put_tenant`` decides)."""
        self._table.put(Item=self._tenant_item(tenant))
        self._tenants.put(tenant.tenant_id, tenant)

    def begin_case_switch(self, tenant: Tenant, until: datetime) -> Tenant:
        """Mark ``tenant`` (as stored now) as switching its case rule until ``until``: from the
        moment a function reads the mark, it adds no codes to the tenant (``adds_paused``).
        The rule itself is unchanged. ConcurrentChange if another switch is under way."""
        marked = tenant._replace(case_switch_until=until)
        self._put_switch(
            marked,
            f"attribute_not_exists({_SWITCH}) OR {_SWITCH} < :mine",
            "Another switch of the tenant's case rule is under way",
            clock.now(),
        )
        return marked

    def end_case_switch(self, marked: Tenant, tenant: Tenant) -> None:
        """Replace the switch ``marked`` began by ``tenant`` (the new rule, or the old one when
        the switch is given up). ConcurrentChange if the mark is no longer this switch's."""
        assert marked.case_switch_until is not None
        self._put_switch(
            tenant,
            f"{_SWITCH} = :mine",
            "The switch of the tenant's case rule was overtaken",
            marked.case_switch_until,
        )
        self._tenants.put(tenant.tenant_id, tenant)

    def _put_switch(self, tenant: Tenant, condition: str, overtaken: str, mine: datetime) -> None:
        try:
            self._table.put(
                Item=self._tenant_item(tenant),
                ConditionExpression=condition,
                ExpressionAttributeValues={":mine": s(clock.to_stored(mine))},
            )
        except ConditionFailed:
            # Our own write, landed with its answer lost (botocore's retry then fails the
            # condition), leaves exactly ``tenant``; anything else came first.
            if self.get_tenant(tenant.tenant_id) != tenant:
                raise ConcurrentChange([], overtaken) from None

    def _tenant_item(self, tenant: Tenant) -> Item:
        if not keys.TENANT_ID.match(tenant.tenant_id):
            raise InvalidRequest("Tenant ids use only letters, digits, '-' and '_'.", "tenant")
        item: Item = {
            **keys.tenant_key(tenant.tenant_id),
            "name": s(tenant.name),
            "list_pk": s(keys.TENANT_CATALOG),
            "list_sk": s(tenant.tenant_id),
        }
        if tenant.mews_enterprise_id is not None:
            item["mews_enterprise_id"] = s(str(tenant.mews_enterprise_id))
        if not tenant.case_sensitive:  # absent means sensitive: items written before the key
            item["case_sensitive"] = {"BOOL": False}
        if tenant.case_switch_until is not None:
            item[_SWITCH] = s(clock.to_stored(tenant.case_switch_until))
        return item

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant as stored now (operators' reads: no cache)."""
        item = self._table.get(keys.tenant_key(tenant_id))
        if item is None:
            return None
        enterprise = item.get("mews_enterprise_id")
        switch = item.get(_SWITCH)
        return Tenant(
            tenant_id,
            item["name"]["S"],
            UUID(enterprise["S"]) if enterprise else None,
            item.get("case_sensitive", {"BOOL": True})["BOOL"],
            clock.from_stored(switch["S"]) if switch else None,
        )

    def case_sensitive(self, tenant_id: str) -> bool:
        """Whether the tenant matches values case included, from the function's cache if read
        within the cache TTL (an unknown tenant, as one written before the setting: yes)."""
        tenant = self._cached_tenant(tenant_id)
        return tenant is None or tenant.case_sensitive

    def adds_paused_until(self, tenant_id: str) -> datetime | None:
        """Until when this function must not add codes to the tenant: a switch of its case
        rule is under way (from the function's cache, like the rule)."""
        tenant = self._cached_tenant(tenant_id)
        until = None if tenant is None else tenant.case_switch_until
        return until if until is not None and until > clock.now() else None

    def _cached_tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get_or_load(tenant_id, lambda: self.get_tenant(tenant_id))

    def put_pool(self, pool: Pool) -> None:
        """Create or replace a pool and claim its aliases, atomically.

        An alias already naming another pool of the tenant refuses the whole write.
        """
        pool.checked()
        actions: list[Item] = [
            {
                "Put": {
                    "TableName": self._table.name,
                    "Item": {
                        **keys.pool_key(pool.tenant_id, pool.pool_id),
                        **pool_to_item(pool),
                        "list_pk": s(keys.pool_catalog_partition(pool.tenant_id)),
                        "list_sk": s(pool.pool_id),
                    },
                }
            }
        ]
        named = pool_aliases(pool)
        previous = self._table.get(keys.pool_key(pool.tenant_id, pool.pool_id))
        dropped = set(pool_aliases(pool_from_item(previous))) - set(named) if previous else set()
        for protocol, alias in sorted(dropped):  # an alias the pool no longer answers to
            actions.append(
                {
                    "Delete": {
                        "TableName": self._table.name,
                        "Key": keys.alias_key(pool.tenant_id, protocol, alias),
                        "ConditionExpression": "#pool = :pool",
                        "ExpressionAttributeNames": {"#pool": "pool"},
                        "ExpressionAttributeValues": {":pool": s(pool.pool_id)},
                    }
                }
            )
        for protocol, alias in named:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": {
                            **keys.alias_key(pool.tenant_id, protocol, alias),
                            "pool": s(pool.pool_id),
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR #pool = :pool",
                        "ExpressionAttributeNames": {"#pool": "pool"},
                        "ExpressionAttributeValues": {":pool": s(pool.pool_id)},
                    }
                }
            )
        try:
            self._table.transact(actions)
        except TransactionCancelled as cancelled:
            taken = [
                f"{protocol} {alias!r}"
                for (protocol, alias), reason in zip(
                    named, cancelled.reasons[1 + len(dropped) :], strict=False
                )
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            raise InvalidRequest(
                "Aliases already name another pool: " + ", ".join(taken), "aliases"
            ) from None
        self._pools.forget((pool.tenant_id, pool.pool_id))
        for protocol, alias in dropped:
            self._aliases.forget((pool.tenant_id, protocol, alias))

    def get_pool(self, tenant_id: str, pool_id: str) -> Pool | None:
        """A pool, from the function's cache if read within the cache TTL."""

        def load() -> Pool | None:
            item = self._table.get(keys.pool_key(tenant_id, pool_id))
            return None if item is None else pool_from_item(item)

        return self._pools.get_or_load((tenant_id, pool_id), load)

    def find_pool(self, tenant_id: str, protocol: str, alias: str) -> Pool | None:
        """The pool a protocol names by ``alias`` (e.g. ``maestra``, an externalId)."""

        def load() -> str | None:
            item = self._table.get(keys.alias_key(tenant_id, protocol, alias))
            return None if item is None else str(item["pool"]["S"])

        pool_id = self._aliases.get_or_load((tenant_id, protocol, alias), load)
        return None if pool_id is None else self.get_pool(tenant_id, pool_id)

    def list_tenants(self) -> list[Tenant]:
        items = self._table.paginate(
            self._table.query,
            IndexName=keys.TableLayout().listing_index,
            KeyConditionExpression="list_pk = :catalog",
            ExpressionAttributeValues={":catalog": s(keys.TENANT_CATALOG)},
        )
        found = [self.get_tenant(item["list_sk"]["S"]) for item in items]
        return [tenant for tenant in found if tenant is not None]

    def list_pools(self, tenant_id: str) -> list[Pool]:
        items = self._table.paginate(
            self._table.query,
            IndexName=keys.TableLayout().listing_index,
            KeyConditionExpression="list_pk = :catalog",
            ExpressionAttributeValues={":catalog": s(keys.pool_catalog_partition(tenant_id))},
        )
        pool_ids = [item["pk"]["S"].rsplit("#POOL#", 1)[1] for item in items]
        found = self._table.batch_get([keys.pool_key(tenant_id, p) for p in pool_ids])
        return sorted((pool_from_item(item) for item in found), key=lambda p: p.pool_id)
