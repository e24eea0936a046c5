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
from promo.store.codes.naming import POINTS_TO
from promo.store.codes.visibility import COMMITTED
from promo.store.items import code_from_item, moment_of, text_of

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


def _uses(item: Mapping[str, Any], name: str) -> tuple[Use, ...]:
    uses = []
    for entry in item.get(name, {}).get("L", []):
        use = entry["M"]
        uses.append(
            Use(
                from_stored(use["at"]["S"]),
                use["actor"]["S"],
                text_of(use, "by"),
                text_of(use, "point_of_contact"),
                text_of(use, "reason"),
            )
        )
    return tuple(uses)


def code_image(item: Mapping[str, Any]) -> CodeImage:
    """A code item as the events see it: its facts, never its write token."""
    code = code_from_item(item)
    contact = code.issued_point_of_contact
    return CodeImage(
        tenant_id=code.tenant_id,
        pool_id=code.pool_id,
        value=code.value,
        uuid=str(code.uuid),
        number=code.number,
        state=code.state,
        activity=code.activity,
        staged="staged_batch" in item,
        created_at=code.audit.created_at,
        created_by=code.audit.created_by,
        updated_at=code.audit.updated_at,
        updated_by=code.audit.updated_by,
        batch=text_of(item, "added_batch"),
        issued_at=code.issued_at,
        recipient=code.issued_to,
        issued_point_of_contact=None if contact is None else contact.external_id,
        uses_left=code.uses_left,
        redemptions=_uses(item, "redemptions"),
        rollbacks=_uses(item, "rollbacks"),
        blocked_at=code.blocked_at,
        deleted_at=moment_of(item, "deleted_at"),
        holds=code.holds,
    )
