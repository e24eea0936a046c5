"""Lifecycle transitions: each is one conditional write whose condition is the state it leaves
(the rules of ``promo.domain.lifecycle``); with an idempotency receipt, a two-item transaction.
Nothing here reads a code's state and then writes on the strength of that read."""

import uuid
from datetime import datetime
from typing import NamedTuple

from promo import observability
from promo.domain import clock
from promo.domain.errors import (
    CodeNotFound,
    DuplicateValues,
    NotAvailableForIssue,
    OutsideIssueWindow,
    RecipientLimitReached,
    StoreUnavailable,
    TransitionRefused,
    UsesHeld,
)
from promo.domain.lifecycle import RULES, Rule, Transition
from promo.domain.models import (
    ActivityState,
    Code,
    CodeState,
    Issuance,
    NewCode,
    Pool,
    Recipient,
)
from promo.store import keys
from promo.store.codes.bulk_staging import BulkAdds, new_code_item
from promo.store.codes.naming import CodeKeys, pointed_value
from promo.store.codes.receipts import transact_change
from promo.store.codes.visibility import NEW_ITEM, BatchOutcomes, settled
from promo.store.items import Item, code_from_item, contact_attributes, key_of, n, s
from promo.store.table import ConditionFailed, Table

AVAILABLE_ATTRIBUTES = "avail_pk, avail_sk"


class Write(NamedTuple):
    """One transition's write: the code's key, the rule, who and when, what else it sets.

    ``batch`` names the committed bulk add that staged the code, if the caller knows it;
    ``known`` is the code as the caller last saw it (see ``Transitions.apply``)."""

    key: Item
    rule: Rule
    issuance: Issuance
    extra: Item
    batch: str | None = None
    known: Item | None = None
    # The recipient's counter update, when the pool limits codes per recipient.
    limit: Item | None = None
    # A redemption taking a held use instead of a free one: the hold's attribute and its
    # deadline as read (the holder's own hold, or someone's expired one).
    hold: tuple[str, str] | None = None


class Transitions:
    def __init__(
        self, table: Table, outcomes: BatchOutcomes, adds: BulkAdds, code_keys: CodeKeys
    ) -> None:
        self._table = table
        self._outcomes = outcomes
        self._adds = adds
        self._keys = code_keys

    def issue(
        self, tenant_id: str, value: str, issuance: Issuance, pool: Pool | None = None
    ) -> Code:
        """Issue the code with this value, if its state and validity allow it then, and if
        its ``pool`` (given by a caller that knows it) lets the recipient have one more."""
        code = self._transition(
            tenant_id,
            value,
            Transition.ISSUE,
            issuance,
            issue_attributes(issuance),
            self.limit_action(pool, issuance) if pool is not None else None,
        )
        observability.count(observability.ISSUED_CODES)
        return code

    def redeem(self, tenant_id: str, value: str, issuance: Issuance) -> Code:
        """Take one use of the code: a free one, or the one held for the redeemer, or, when
        every use is taken or held, one whose hold has expired."""
        extra: Item = {
            "used_at": s(clock.to_stored(issuance.at)),
            **contact_attributes("used", issuance.point_of_contact),
        }
        if issuance.recipient is not None:
            extra["used_by"] = s(issuance.recipient.identifier)
        return self._transition(tenant_id, value, Transition.REDEEM, issuance, extra)

    def block(self, tenant_id: str, value: str, at: datetime, actor: str) -> Code:
        blocked = {"blocked_at": s(clock.to_stored(at))}
        return self._transition(tenant_id, value, Transition.BLOCK, Issuance(at, actor), blocked)

    def create_issued(self, pool: Pool, new: NewCode, issuance: Issuance) -> Code:
        """Create a code and issue it in the same write; DuplicateValues if the value exists."""
        self._keys.check_adds_allowed(pool.tenant_id)
        number = self._adds.allocate_numbers(pool.tenant_id, 1)
        # A backdated create-and-issue is created at its effective time, so the code is never
        # issued before it existed.
        stamped = clock.to_stored(min(clock.now(), issuance.at))
        keyed = self._keys.key(pool.tenant_id, new.value)
        item, pointer = new_code_item(keyed, pool, new, number, stamped, issuance.actor)
        for name in ("avail_pk", "avail_sk"):
            del item[name]
        item["state"] = s(CodeState.ISSUED)
        item.update(issue_attributes(issuance))
        limit = self.limit_action(pool, issuance)
        if issuance.receipt is None and limit is None:
            self._adds.write_codes([(item, pointer)], stage=None)
        else:
            puts = [
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": written,
                        "ConditionExpression": NEW_ITEM,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
                for written in (item, pointer)
            ]
            try:
                transact_change(
                    self._table, puts + ([limit] if limit else []), key_of(item), issuance.receipt
                )
            except ConditionFailed as failed:
                if failed.action == len(puts):
                    raise RecipientLimitReached from None
                raise DuplicateValues([new.value]) from None
        observability.count(observability.ISSUED_CODES)
        return code_from_item(item)

    def limit_action(self, pool: Pool, issuance: Issuance) -> Item | None:
        return recipient_limit_action(self._table, pool, issuance)

    def _transition(
        self,
        tenant_id: str,
        value: str,
        transition: Transition,
        issuance: Issuance,
        extra: Item,
        limit: Item | None = None,
    ) -> Code:
        key = self._keys.key(tenant_id, value)
        batch, hold = None, None
        for _ in range(5):
            try:
                written = Write(key, RULES[transition], issuance, extra, batch, limit=limit)
                return code_from_item(self.apply(written._replace(hold=hold)))
            except ConditionFailed as failed:
                if failed.item is None:
                    raise CodeNotFound from None
                target = pointed_value(failed.item)
                if target is not None:  # a code the tenant held before it became insensitive
                    key = keys.code_key(tenant_id, target)
                    continue
                staged = failed.item.get("staged_batch", {}).get("S")
                if staged is not None and staged != batch:
                    if not self._outcomes.visible(failed.item):
                        raise CodeNotFound from None
                    batch = staged  # its batch committed: the code is real, write it as such
                    continue
                usable = held_use(failed.item, issuance) if RULES[transition].takes_use else None
                if usable != hold:
                    # No free use for this write: take the held one; or the hold it tried was
                    # taken meanwhile: try a free use again.
                    hold = usable
                    continue
                raise _refusal(transition, failed.item, issuance) from None
        raise StoreUnavailable("Too many concurrent changes of this code; retry.")

    def apply(self, write: Write) -> Item:
        """The one conditional write of a transition; with a receipt, a two-item transaction.

        With ``write.known`` (the code as the caller last saw it, when none of what it holds
        can have changed if the write succeeds: a claim's candidate), the code after the write
        is assembled from it and what was written instead of being read back. Its validity
        window is among what cannot change (it is written once, with the code), so such a
        caller has judged it itself and the write leaves it out of its condition.

        Every write stamps a token of its own on the code (``last_request``). When DynamoDB
        applied a write but its answer was lost, botocore's retry meets the write's own first
        attempt and fails its condition: the item the failure returns carries the token, so
        the write is answered as the success it was, instead of as a refusal (or, for a claim,
        a second code taken while the first stays issued to the same recipient)."""
        update, values = _update_request(write)
        receipt = write.issuance.receipt
        try:
            if receipt is None and write.limit is None and write.known is None:
                return self._table.update(**update, ReturnValues="ALL_NEW")
            if receipt is None and write.limit is None:
                self._table.update(**update)
            else:
                actions = [{"Update": {"TableName": self._table.name, **update}}]
                transact_change(
                    self._table,
                    actions + ([write.limit] if write.limit else []),
                    write.key,
                    receipt,
                )
        except ConditionFailed as failed:
            if failed.action == 1:  # the recipient's counter: nothing was issued
                raise RecipientLimitReached from None
            if failed.item is None or failed.item.get("last_request") != values[":request"]:
                raise
            observability.count("RetriesMetTheirOwnWrite")
            if write.known is None:
                return failed.item
        if write.known is None:
            return self._table.get(write.key) or {}
        assigned = {
            "state": values[":target"],
            "updated_at": values[":now"],
            "updated_by": values[":actor"],
            **write.extra,
        }
        return {**write.known, **assigned}


def _update_request(write: Write) -> tuple[Item, Item]:
    """The UpdateItem request of ``write`` and its expression values."""
    condition_settled, settled_values, removals = settled(write.batch)
    values: Item = {
        **settled_values,
        ":target": s(write.rule.target),
        ":active": s(ActivityState.ACTIVE),
        ":now": s(clock.to_stored(clock.now())),
        ":actor": s(write.issuance.actor),
        ":request": s(uuid.uuid4().hex),
    }
    names = {"#state": "state"}
    condition = f"{_leaves(write, values, names)} AND activity = :active AND {condition_settled}"
    if write.rule.needs_validity and write.known is None:
        values[":at"] = s(clock.to_stored(write.issuance.at))
        condition += (
            " AND (attribute_not_exists(valid_from) OR valid_from <= :at)"
            " AND (attribute_not_exists(valid_until) OR valid_until >= :at)"
        )
    if write.known is not None:
        # Answered from its index entry, the code must still be the one indexed: a hold
        # (``reservations``) takes an available code out of the index and changes its uses.
        condition += " AND attribute_exists(avail_pk)"
    assignments = [
        "#state = :target",
        "updated_at = :now",
        "updated_by = :actor",
        "last_request = :request",
    ]
    for index, (name, value) in enumerate(write.extra.items()):
        values[f":extra{index}"] = value
        assignments.append(f"{name} = :extra{index}")
    if write.rule.target is CodeState.USED:
        assignments += _redemption(write, values)
    if write.hold is not None:
        removals += ", #hold"
    update: Item = {
        "Key": write.key,
        "ConditionExpression": condition,
        "UpdateExpression": f"SET {', '.join(assignments)} REMOVE {AVAILABLE_ATTRIBUTES}{removals}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        # The code as it is when the condition fails: why it refused, or that this very write
        # had landed already (its token).
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return update, values


def _leaves(write: Write, values: Item, names: dict[str, str]) -> str:
    """The condition on the state the write leaves (and, taking a use, on the use taken)."""
    sources = []
    for index, state in enumerate(sorted(write.rule.sources)):
        values[f":source{index}"] = s(state)
        sources.append(f":source{index}")
    leaves = f"#state IN ({', '.join(sources)})"
    if write.hold is not None:  # the use was taken when it was held; the hold must still be
        names["#hold"], values[":hold_until"] = write.hold[0], s(write.hold[1])
        values[":used"] = s(CodeState.USED)
        return f"(#state IN ({', '.join(sources)}, :used) AND #hold.held_until = :hold_until)"
    if write.rule.takes_use:  # a use must be free: none left once all are taken or held
        values[":none_left"] = n(0)
        leaves = f"({leaves} AND (attribute_not_exists(uses_left) OR uses_left > :none_left))"
    if write.rule.from_partly_used:  # a multi-use code with redemptions left
        values[":used"], values[":none_left"] = s(CodeState.USED), n(0)
        leaves = f"({leaves} OR (#state = :used AND uses_left > :none_left))"
    holder = write.issuance.recipient
    if write.rule.takes_use and holder is not None:  # a holder redeems through their hold
        names["#mine"] = keys.hold_attribute(holder.kind, holder.identifier)
        leaves = f"{leaves} AND attribute_not_exists(#mine)"
    return leaves


def held_use(item: Item, issuance: Issuance) -> tuple[str, str] | None:
    """The hold a use may be taken through when no free use is: the redeemer's own, else any
    hold expired by now (its holder can no longer count on it). None: no such hold."""
    holder = issuance.recipient
    if holder is not None:
        mine = keys.hold_attribute(holder.kind, holder.identifier)
        if mine in item:
            return mine, item[mine]["M"]["held_until"]["S"]
    now = clock.to_stored(clock.now())
    for name, attribute in sorted(item.items()):
        if name.startswith(keys.HOLD_PREFIX) and attribute["M"]["held_until"]["S"] < now:
            return name, attribute["M"]["held_until"]["S"]
    return None


def _redemption(write: Write, values: Item) -> list[str]:
    """A redemption takes one use (a single-use code has one, implicitly) and is recorded on
    the code: when, by which credential, for whom, where."""
    issuance = write.issuance
    record: Item = {"at": s(clock.to_stored(issuance.at)), "actor": s(issuance.actor)}
    if issuance.recipient is not None:
        record["by"] = s(issuance.recipient.identifier)
    if issuance.point_of_contact is not None:
        record["point_of_contact"] = s(issuance.point_of_contact.external_id)
    values[":no_redemptions"] = {"L": []}
    values[":redemption"] = {"L": [{"M": record}]}
    taken = ["redemptions = list_append(if_not_exists(redemptions, :no_redemptions), :redemption)"]
    if write.hold is not None:
        return taken  # the held use was taken from ``uses_left`` when it was held
    values[":one"] = n(1)
    return ["uses_left = if_not_exists(uses_left, :one) - :one", *taken]


def _refusal(transition: Transition, item: Item, issuance: Issuance) -> Exception:
    """Why a visible code refused ``transition``, from the code as it was."""
    if transition is Transition.ISSUE:
        code = code_from_item(item)
        if _only_validity_failed(item):
            return OutsideIssueWindow(code=code)
        return NotAvailableForIssue(code=code)
    if transition is Transition.REDEEM and _all_uses_held(item, issuance.recipient):
        return UsesHeld()
    if item["state"]["S"] == CodeState.USED and transition is Transition.REDEEM:
        return TransitionRefused("Promo code has no redemption left.")
    return TransitionRefused(
        f"Promo code cannot go from {item['state']['S']} to {RULES[transition].target}."
    )


def recipient_limit_action(table: Table, pool: Pool, issuance: Issuance) -> Item | None:
    """The update of the recipient's counter for ``pool`` that must succeed with an issue: one
    more code, if fewer than the pool's ``max_codes_per_recipient`` were issued to them."""
    recipient = issuance.recipient
    if pool.max_codes_per_recipient is None or recipient is None:
        return None
    return {
        "Update": {
            "TableName": table.name,
            "Key": keys.recipient_key(
                pool.tenant_id, pool.pool_id, recipient.kind, recipient.identifier
            ),
            "UpdateExpression": "ADD issued :one SET recipient_kind = :kind, recipient_id = :id",
            "ConditionExpression": "attribute_not_exists(issued) OR issued < :most",
            "ExpressionAttributeValues": {
                ":one": n(1),
                ":most": n(pool.max_codes_per_recipient),
                ":kind": s(recipient.kind),
                ":id": s(recipient.identifier),
            },
        }
    }


def issue_attributes(issuance: Issuance) -> Item:
    attributes: Item = {
        "issued_at": s(clock.to_stored(issuance.at)),
        **contact_attributes("issued", issuance.point_of_contact),
    }
    if issuance.recipient is not None:
        attributes["issued_to_kind"] = s(issuance.recipient.kind)
        attributes["issued_to_id"] = s(issuance.recipient.identifier)
    return attributes


def _all_uses_held(item: Item, redeemer: Recipient | None) -> bool:
    """Whether an active, unblocked code has no use left but ones held for others."""
    mine = redeemer and keys.hold_attribute(redeemer.kind, redeemer.identifier)
    return (
        any(name.startswith(keys.HOLD_PREFIX) and name != mine for name in item)
        and item["activity"]["S"] == ActivityState.ACTIVE
        and item["state"]["S"] != CodeState.BLOCKED
        and item.get("uses_left", {"N": "0"})["N"] == "0"
    )


def _only_validity_failed(item: Item) -> bool:
    """Whether a refused issue of a visible code failed only on its validity window."""
    return (
        item["state"]["S"] in RULES[Transition.ISSUE].sources
        and item["activity"]["S"] == ActivityState.ACTIVE
    )
