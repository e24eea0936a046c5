"""The table's change stream, read: a DynamoDB Streams record (as Lambda delivers it, images in
the table's own attribute-value form) as a change of a code, a bulk add's commit, or nothing
the inventory and the events care about.

Only code items (``sk = CODE``) and bulk-add records (``sk = BATCH``) matter; the event source
mapping's filter (template.yaml) keeps the others from ever invoking the consumer, and
``read_record`` ignores them too (the local stack and tests deliver every record).
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

from promo.domain.clock import from_stored
from promo.domain.events import CodeImage, Use
from promo.domain.models import ActivityState, CodeState, Recipient
from promo.store.codes.naming import POINTS_TO
from promo.store.codes.visibility import COMMITTED
from promo.store.items import holds_of

# What the consumer is invoked for (the event source mapping's filter matches these keys).
RELEVANT_SORT_KEYS = ("CODE", "BATCH")


class CodeChange(NamedTuple):
    """One write of a code: before (None: created) and after (None: removed)."""

    record_id: str
    sequence: str
    old: CodeImage | None
    new: CodeImage | None


class BatchCommit(NamedTuple):
    """A bulk add committed: from now on its staged codes exist, ``pools`` of them per pool."""

    record_id: str
    sequence: str
    tenant_id: str
    batch_id: str
    created_at: str
    created_by: str
    # How many codes of each pool the add staged; empty for a commit written before the
    # record said so (promo-admin reconcile counts those).
    pools: Mapping[str, int]


Change = CodeChange | BatchCommit


def read_record(record: Mapping[str, Any]) -> Change | None:
    """The change a stream record shows, or None when it shows none that counts."""
    stream = record.get("dynamodb", {})
    sort_key = stream.get("Keys", {}).get("sk", {}).get("S")
    record_id, sequence = str(record["eventID"]), str(stream.get("SequenceNumber", ""))
    old, new = stream.get("OldImage"), stream.get("NewImage")
    if sort_key == "CODE":
        if any(image is not None and POINTS_TO in image for image in (old, new)):
            return None  # a folded value's pointer (case-insensitive tenants), not a code
        return CodeChange(
            record_id,
            sequence,
            None if old is None else code_image(old),
            None if new is None else code_image(new),
        )
    if sort_key == "BATCH" and old is None and new is not None:
        if new.get("outcome", {"S": COMMITTED})["S"] != COMMITTED:
            return None  # aborted: its staged codes are removed, each a change of its own
        tenant_id, batch_id = new["pk"]["S"].removeprefix("T#").split("#BATCH#", 1)
        pools = new.get("pools", {}).get("M", {})
        return BatchCommit(
            record_id,
            sequence,
            tenant_id,
            batch_id,
            new["created_at"]["S"],
            new["created_by"]["S"],
            {pool: int(count["N"]) for pool, count in pools.items()},
        )
    return None


def _text(item: Mapping[str, Any], name: str) -> str | None:
    attribute = item.get(name)
    return None if attribute is None else str(attribute["S"])


def _moment(item: Mapping[str, Any], name: str) -> Any:
    text = _text(item, name)
    return None if text is None else from_stored(text)


def _uses(item: Mapping[str, Any], name: str) -> tuple[Use, ...]:
    uses = []
    for entry in item.get(name, {}).get("L", []):
        use = entry["M"]
        uses.append(
            Use(
                from_stored(use["at"]["S"]),
                use["actor"]["S"],
                _text(use, "by"),
                _text(use, "point_of_contact"),
                _text(use, "reason"),
            )
        )
    return tuple(uses)


def code_image(item: Mapping[str, Any]) -> CodeImage:
    """A code item as the events see it: its facts, never its write token."""
    kind, identifier = _text(item, "issued_to_kind"), _text(item, "issued_to_id")
    return CodeImage(
        tenant_id=item["tenant"]["S"],
        pool_id=item["pool"]["S"],
        value=item["value"]["S"],
        uuid=item["uuid"]["S"],
        number=int(item["number"]["N"]),
        state=CodeState(item["state"]["S"]),
        activity=ActivityState(item["activity"]["S"]),
        staged="staged_batch" in item,
        created_at=from_stored(item["created_at"]["S"]),
        created_by=item["created_by"]["S"],
        updated_at=from_stored(item["updated_at"]["S"]),
        updated_by=item["updated_by"]["S"],
        batch=_text(item, "added_batch"),
        issued_at=_moment(item, "issued_at"),
        recipient=Recipient(kind, identifier) if kind and identifier else None,
        issued_point_of_contact=_text(item, "issued_poc_id"),
        uses_left=int(item["uses_left"]["N"]) if "uses_left" in item else None,
        redemptions=_uses(item, "redemptions"),
        rollbacks=_uses(item, "rollbacks"),
        blocked_at=_moment(item, "blocked_at"),
        deleted_at=_moment(item, "deleted_at"),
        holds=holds_of(item),
    )
