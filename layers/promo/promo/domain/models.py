"""Entities shared by every protocol: immutable records, built on every hot-path call, so they
stay cheap; request validation is pydantic's job at the codec edge.

Records across the layer are ``typing.NamedTuple``s, not frozen dataclasses: a frozen dataclass
compiles its generated methods when its module is imported (~0.3 ms each, some 30 of them on
every cold start) and sets each field through ``object.__setattr__`` when built (3x slower).
``NewCode`` alone stays a dataclass: it checks its value when built (``__post_init__``). A
NamedTuple compares as a tuple, so records of different types with the same values are equal:
never mix record types as keys of one dict, set or cache."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID

from promo.domain.errors import InvalidRequest
from promo.domain.values import normalize_value


class CodeState(StrEnum):
    AVAILABLE = "AVAILABLE"
    ISSUED = "ISSUED"
    USED = "USED"
    BLOCKED = "BLOCKED"


class ActivityState(StrEnum):
    """Soft deletion, orthogonal to the lifecycle state (Mews ``ActivityState``)."""

    ACTIVE = "ACTIVE"
    DELETED = "DELETED"


class StepKind(StrEnum):
    """How a configured Maestra operation gets its code."""

    BY_VALUE = "by-value"  # issue an existing code by its value; never create one
    BY_VALUE_CREATE = "by-value-create"  # issue by value, creating the code in the pool if new
    FROM_POOL = "from-pool"  # issue any available code of the pool
    REDEEM = "redeem"  # use a code by its value
    ROLLBACK_REDEMPTION = "rollback-redemption"  # give one redemption of a code back
    RESERVE = "reserve"  # hold one use of a code for the customer until a deadline
    RELEASE = "release"  # give the customer's held use back

    @property
    def uses(self) -> bool:
        """Whether the step uses a code (or holds, releases or gives a use back) rather than
        issuing one."""
        return self not in (StepKind.BY_VALUE, StepKind.BY_VALUE_CREATE, StepKind.FROM_POOL)


class Window(NamedTuple):
    """A validity window, inclusive at both ends (a code is usable until its end, as Maestra's
    ``availableTill`` and Mews' ``ValidityEndUtc`` read); a missing bound is unbounded.

    A code's window is fixed when the code is created: claims judge it from the available
    index's copy (promo/store/codes/claims.py), so no operation may change it afterwards."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        if self.start is not None and moment < self.start:
            return False
        return self.end is None or moment <= self.end


class PointOfContact(NamedTuple):
    """Where a code was issued or used: a Maestra endpoint, a CRM.COM unit, a SyncTV device."""

    external_id: str
    name: str | None = None


class Recipient(NamedTuple):
    """Who a code was issued to, in the issuing protocol's terms.

    ``kind`` names the identifier, e.g. ``maestra.webSiteUserId`` or
    ``crm.rewards_participant.number``; ``identifier`` is its value.
    """

    kind: str
    identifier: str


class CrmCampaign(NamedTuple):
    """CRM.COM's view of a pool: a promotion campaign."""

    id: str
    name: str
    alternative_code: str | None = None
    type: str = "DISCOUNT_PROMOTION"
    distribution_method: str = "UPON_REQUEST"
    state: str = "POSTED"
    description: str | None = None
    long_description: str | None = None
    short_description: str | None = None

    @property
    def gives_codes_on_request(self) -> bool:
        """Only POSTED discount promotions distributed UPON_REQUEST answer request_promo_code."""
        return (self.state, self.type, self.distribution_method) == (
            "POSTED",
            "DISCOUNT_PROMOTION",
            "UPON_REQUEST",
        )


class PoolAliases(NamedTuple):
    """How each protocol names the pool. A protocol without an alias cannot reach the pool."""

    maestra_external_id: str | None = None
    crm_campaign: CrmCampaign | None = None
    synctv_offer_id: int | None = None
    mews_voucher_id: UUID | None = None


class Pool(NamedTuple):
    """A set of codes given out alike, named by each protocol through its aliases."""

    tenant_id: str
    pool_id: str
    name: str
    description: str | None = None
    aliases: PoolAliases = PoolAliases()
    issue_window: Window = Window()
    # Days a code added without its own validity end stays valid; None: no end.
    default_validity_days: int | None = None
    # Shards of the pool's available-code index: each takes ~1,000 claims/s (docs/capacity.md).
    shard_count: int = 4
    # How many times each code of the pool can be redeemed (docs/lifecycle.md).
    redemptions_per_code: int = 1
    # The most codes of the pool one recipient is ever issued; None: no limit.
    max_codes_per_recipient: int | None = None
    # Available codes at or below which the pool is low (``PoolLow``); None: never low, only
    # empty (``PoolEmpty``). docs/events.md.
    low_watermark: int | None = None

    def checked(self) -> "Pool":
        """The pool, if its settings hold together; InvalidRequest naming the one that does not."""
        if self.low_watermark is not None and self.low_watermark < 1:
            raise InvalidRequest(
                "low_watermark must be 1 or more (unset: never low).", "low_watermark"
            )
        return self


class Tenant(NamedTuple):
    """One customer of the service; its pools, codes and credentials are its own."""

    tenant_id: str
    name: str
    # The tenant as Mews knows it (EnterpriseId), if Mews clients reach it.
    mews_enterprise_id: UUID | None = None
    # False: values match, and are unique, without regard to case (``values.fold_value``).
    case_sensitive: bool = True
    # While an operator switches ``case_sensitive``: until when functions that know of the
    # switch refuse to add codes (``services.tenants``); None when no switch is under way.
    case_switch_until: datetime | None = None


class Audit(NamedTuple):
    """Who created a code and who last changed it, and when."""

    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class Receipt(NamedTuple):
    """Proof that a request with an idempotency key changed a code, written in the same
    transaction as the change, so a retry can never change a second code.

    ``scope`` names the key's namespace (e.g. a Maestra endpoint and operation); ``fingerprint``
    is a digest of the request, so the same key with another request is told apart.
    """

    scope: str
    key: str
    fingerprint: str
    value: str | None = None  # the code the request changed; filled in by the store


class Issuance(NamedTuple):
    """Who changes a code, when, for whom and where, with the request's idempotency receipt:
    everything an issue or a redemption records besides the code itself."""

    at: datetime  # the request's effective time
    actor: str
    recipient: Recipient | None = None
    point_of_contact: PointOfContact | None = None
    receipt: Receipt | None = None


@dataclass(frozen=True, slots=True)
class NewCode:
    """A code to be added: what the caller decides. Ids and audit come from the store.

    Every protocol must be able to show every code and name it the same way, so the value is
    held in its canonical form under the one value policy (``promo.domain.values``): built
    with a value the policy refuses, it raises ``InvalidRequest``; built with another spelling
    of an acceptable value (NFD), it holds the NFC form.
    """

    pool_id: str
    value: str
    validity: Window = field(default_factory=Window)

    def __post_init__(self) -> None:
        canonical = normalize_value(self.value, field="Value")
        if canonical != self.value:
            object.__setattr__(self, "value", canonical)


class Code(NamedTuple):
    """A promo code as stored: its lifecycle state, validity and audit trail."""

    tenant_id: str
    pool_id: str
    value: str
    uuid: UUID
    # The integer id SyncTV calls ``id`` and Maestra ``mindboxId``; unique within the tenant.
    number: int
    state: CodeState
    activity: ActivityState
    validity: Window
    audit: Audit
    issued_at: datetime | None = None
    issued_to: Recipient | None = None
    issued_point_of_contact: PointOfContact | None = None
    used_at: datetime | None = None
    used_by: str | None = None
    used_point_of_contact: PointOfContact | None = None
    blocked_at: datetime | None = None
    # Redemptions a code has left, holds taken out; None for a single-use code never redeemed
    # or held.
    uses_left: int | None = None
    # Uses held for holders (reservations), each until its deadline.
    holds: tuple["Hold", ...] = ()

    @property
    def is_deleted(self) -> bool:
        return self.activity is ActivityState.DELETED

    @property
    def is_spent(self) -> bool:
        """Used, with no redemption left: what every protocol shows as used or consumed. A
        multi-use code is USED from its first redemption, and spent at its last."""
        return self.state is CodeState.USED and not self.uses_left and not self.holds

    def free_uses(self, at: datetime, holder: Recipient | None = None) -> int:
        """Uses anyone (or ``holder``) may take at ``at``: those left, those of holds expired
        by then, and the holder's own hold."""
        if self.uses_left is None:
            left = 0 if self.state is CodeState.USED else 1
        else:
            left = self.uses_left
        taken_over = (hold for hold in self.holds if hold.until < at or hold.holder == holder)
        return left + sum(1 for _ in taken_over)

    def hold_of(self, holder: Recipient) -> "Hold | None":
        return next((hold for hold in self.holds if hold.holder == holder), None)


class Hold(NamedTuple):
    """One use of a code held for a holder until a deadline: a reservation. Nobody else can
    take that use while it is held; after the deadline anyone can, and no job is needed to
    give it back (the deadline is compared when a use is taken)."""

    holder: Recipient
    until: datetime
