"""Translation between domain entities and DynamoDB items (low-level attribute-value form)."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from promo.domain.clock import from_stored, to_stored
from promo.domain.models import (
    ActivityState,
    Audit,
    Code,
    CodeState,
    CrmCampaign,
    Hold,
    PointOfContact,
    Pool,
    PoolAliases,
    Recipient,
    Window,
)
from promo.store.keys import HOLD_PREFIX

Item = dict[str, Any]
AttributeValue = dict[str, Any]


def s(value: str) -> AttributeValue:
    return {"S": value}


def n(value: int) -> AttributeValue:
    return {"N": str(value)}


def text_of(item: Mapping[str, Any], name: str) -> str | None:
    attribute = item.get(name)
    return None if attribute is None else str(attribute["S"])


def moment_of(item: Mapping[str, Any], name: str) -> Any:
    text = text_of(item, name)
    return None if text is None else from_stored(text)


def _contact(item: Mapping[str, Any], prefix: str) -> PointOfContact | None:
    external_id = text_of(item, f"{prefix}_poc_id")
    if external_id is None:
        return None
    return PointOfContact(external_id, text_of(item, f"{prefix}_poc_name"))


def code_from_item(item: Mapping[str, Any]) -> Code:
    kind, identifier = text_of(item, "issued_to_kind"), text_of(item, "issued_to_id")
    return Code(
        tenant_id=item["tenant"]["S"],
        pool_id=item["pool"]["S"],
        value=item["value"]["S"],
        uuid=UUID(item["uuid"]["S"]),
        number=int(item["number"]["N"]),
        state=CodeState(item["state"]["S"]),
        activity=ActivityState(item["activity"]["S"]),
        validity=Window(moment_of(item, "valid_from"), moment_of(item, "valid_until")),
        audit=Audit(
            created_at=from_stored(item["created_at"]["S"]),
            created_by=item["created_by"]["S"],
            updated_at=from_stored(item["updated_at"]["S"]),
            updated_by=item["updated_by"]["S"],
        ),
        issued_at=moment_of(item, "issued_at"),
        issued_to=Recipient(kind, identifier) if kind and identifier else None,
        issued_point_of_contact=_contact(item, "issued"),
        used_at=moment_of(item, "used_at"),
        used_by=text_of(item, "used_by"),
        used_point_of_contact=_contact(item, "used"),
        blocked_at=moment_of(item, "blocked_at"),
        uses_left=int(item["uses_left"]["N"]) if "uses_left" in item else None,
        holds=holds_of(item),
    )


def holds_of(item: Mapping[str, Any]) -> tuple[Hold, ...]:
    """The uses held on a code item (``promo.store.codes.reservations``), by holder digest."""
    return tuple(
        Hold(
            Recipient(item[name]["M"]["kind"]["S"], item[name]["M"]["id"]["S"]),
            from_stored(item[name]["M"]["held_until"]["S"]),
        )
        for name in sorted(name for name in item if name.startswith(HOLD_PREFIX))
    )


def window_attributes(window: Window) -> Item:
    item: Item = {}
    if window.start is not None:
        item["valid_from"] = s(to_stored(window.start))
    if window.end is not None:
        item["valid_until"] = s(to_stored(window.end))
    return item


def contact_attributes(prefix: str, contact: PointOfContact | None) -> Item:
    if contact is None:
        return {}
    item: Item = {f"{prefix}_poc_id": s(contact.external_id)}
    if contact.name is not None:
        item[f"{prefix}_poc_name"] = s(contact.name)
    return item


def _optional(item: Item, name: str, value: str | int | None) -> None:
    if value is None:
        return
    item[name] = n(value) if isinstance(value, int) else s(value)


def pool_to_item(pool: Pool) -> Item:
    item: Item = {
        "tenant": s(pool.tenant_id),
        "pool": s(pool.pool_id),
        "name": s(pool.name),
        "shard_count": n(pool.shard_count),
    }
    _optional(item, "description", pool.description)
    _optional(item, "default_validity_days", pool.default_validity_days)
    if pool.redemptions_per_code != 1:
        item["redemptions_per_code"] = n(pool.redemptions_per_code)
    if pool.max_codes_per_recipient is not None:
        item["max_codes_per_recipient"] = n(pool.max_codes_per_recipient)
    if pool.low_watermark is not None:
        item["low_watermark"] = n(pool.low_watermark)
    if pool.issue_window.start is not None:
        item["issue_from"] = s(to_stored(pool.issue_window.start))
    if pool.issue_window.end is not None:
        item["issue_until"] = s(to_stored(pool.issue_window.end))
    aliases = pool.aliases
    _optional(item, "maestra_external_id", aliases.maestra_external_id)
    _optional(item, "synctv_offer_id", aliases.synctv_offer_id)
    _optional(item, "mews_voucher_id", str(aliases.mews_voucher_id or "") or None)
    campaign = aliases.crm_campaign
    if campaign is not None:
        fields = campaign._asdict()
        item["crm_campaign"] = {"M": {k: s(v) for k, v in fields.items() if v is not None}}
    return item


def pool_from_item(item: Mapping[str, Any]) -> Pool:
    campaign_map = item.get("crm_campaign", {}).get("M")
    campaign = CrmCampaign(**{k: v["S"] for k, v in campaign_map.items()}) if campaign_map else None
    offer = item.get("synctv_offer_id")
    voucher = text_of(item, "mews_voucher_id")
    validity_days = item.get("default_validity_days")
    return Pool(
        tenant_id=item["tenant"]["S"],
        pool_id=item["pool"]["S"],
        name=item["name"]["S"],
        description=text_of(item, "description"),
        aliases=PoolAliases(
            maestra_external_id=text_of(item, "maestra_external_id"),
            crm_campaign=campaign,
            synctv_offer_id=int(offer["N"]) if offer else None,
            mews_voucher_id=UUID(voucher) if voucher else None,
        ),
        issue_window=Window(moment_of(item, "issue_from"), moment_of(item, "issue_until")),
        default_validity_days=int(validity_days["N"]) if validity_days else None,
        shard_count=int(item["shard_count"]["N"]),
        redemptions_per_code=int(item.get("redemptions_per_code", {"N": "1"})["N"]),
        max_codes_per_recipient=(
            int(item["max_codes_per_recipient"]["N"]) if "max_codes_per_recipient" in item else None
        ),
        low_watermark=int(item["low_watermark"]["N"]) if "low_watermark" in item else None,
    )


def key_of(item: Item) -> Item:
    """The primary key of an item."""
    return {"pk": item["pk"], "sk": item["sk"]}
