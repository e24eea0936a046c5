"""Domain exceptions, defined once. Each vendor codec maps them to its own error shape."""

from collections.abc import Iterable


class PromoError(Exception):
    """Base of every refusal the service answers with a vendor error instead of a crash."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(PromoError):
    """The request breaks the protocol's rules; ``location`` names the offending field."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class MalformedRequest(PromoError):
    """The body cannot be parsed at all (bad XML/JSON, wrong content type, too large)."""


class AuthenticationFailed(PromoError):
    """Credentials missing, unknown, expired or revoked. Never says which."""

    def __init__(self, message: str = "Authentication failed.") -> None:
        super().__init__(message)


class DeviceNotFound(AuthenticationFailed):
    """A device id that names no device registered for a tenant (SyncTV validate)."""

    def __init__(self, message: str = "Device not found.") -> None:
        super().__init__(message)


class Forbidden(PromoError):
    """Authenticated, but the credential may not do this (e.g. a session without admin rights)."""


class CodeNotFound(PromoError):
    """No such code in this tenant; also the answer for another tenant's code."""

    def __init__(self, message: str = "Promo code not found.") -> None:
        super().__init__(message)


class CodesNotFound(PromoError):
    """Several ids that do not name codes of this tenant."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = sorted(set(ids))
        super().__init__("Unknown promo code ids: " + ", ".join(self.ids))


class PoolNotFound(PromoError):
    def __init__(self, message: str = "Promo code pool not found.") -> None:
        super().__init__(message)


class PoolClosed(PromoError):
    """The pool exists but does not hand out codes on request (a CRM.COM campaign that is not
    a posted discount promotion distributed upon request)."""


class NoCodeAvailable(PromoError):
    """The pool has no code left to issue."""

    def __init__(self, message: str = "No available promo codes in pool.") -> None:
        super().__init__(message)


class NotAvailableForIssue(PromoError):
    """The code exists but its state forbids issuing it; ``code`` is the code as it is."""

    def __init__(self, message: str = "Promo code can't be issued.", code: object = None) -> None:
        super().__init__(message)
        self.code = code


class RecipientLimitReached(NotAvailableForIssue):
    """The recipient already holds as many codes of the pool as its ``max_codes_per_recipient``
    allows. Nothing was written."""

    def __init__(self, code: object = None) -> None:
        super().__init__("The recipient already holds the most codes of this pool it may.", code)


class OutsideIssueWindow(PromoError):
    """The effective time is outside the pool's issue window or the code's validity window."""

    def __init__(
        self,
        message: str = "Issue date not in promo code issuance date range.",
        code: object = None,
    ) -> None:
        super().__init__(message)
        self.code = code


class NothingToRollBack(PromoError):
    """A redemption rollback of a code none of whose redemptions is left to give back."""

    def __init__(self, code: object = None) -> None:
        super().__init__("Promo code has no redemption to roll back.")
        self.code = code


class NothingHeld(PromoError):
    """A release by a holder for whom no use of the code is held (never, or no longer: an
    expired hold another redemption took, or one already redeemed or released)."""

    def __init__(self, code: object = None) -> None:
        super().__init__("No use of this promo code is held for this customer.")
        self.code = code


class NoUseToHold(PromoError):
    """A reservation of a code whose every use is taken or held by someone else."""

    def __init__(self, code: object = None) -> None:
        super().__init__("Promo code has no use left to hold.")
        self.code = code


class TransitionRefused(PromoError):
    """A lifecycle transition whose source state does not hold (e.g. redeeming a used code)."""


class UsesHeld(TransitionRefused):
    """A redemption of a code whose remaining uses are all held for other holders."""

    def __init__(self) -> None:
        super().__init__("Promo code's remaining uses are held for other customers.")


class CodeExpired(TransitionRefused):
    """A redeem of a code whose validity window ended before the request's effective time."""

    def __init__(self, message: str = "Promo code has expired.") -> None:
        super().__init__(message)


class CodeNotYetValid(TransitionRefused):
    """A redeem of a code whose validity window starts after the request's effective time."""

    def __init__(self, message: str = "Promo code is not valid yet.") -> None:
        super().__init__(message)


class DuplicateValues(PromoError):
    """Values already present in the tenant or repeated within one request. Nothing was written."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = sorted(set(values))
        super().__init__("Duplicate promo code values: " + ", ".join(self.values))


class CaseRuleRefused(PromoError):
    """A tenant's ``case_sensitive`` setting cannot change to what was asked, because of the
    values named (they collide when case is ignored, or are keyed by their fold): nothing was
    changed. Or, once a switch has taken effect, codes added while it did collide."""

    def __init__(self, reason: str, values: Iterable[str]) -> None:
        self.values = sorted(set(values))
        super().__init__(f"{reason}: " + ", ".join(self.values))


class CodeSpaceExhausted(PromoError):
    """The generator's alphabet and length cannot supply the requested number of new codes."""


class IdempotencyConflict(PromoError):
    """A retried idempotency key arrived with a different request body."""


class AlreadyDone(PromoError):
    """A request with this idempotency key already changed a code; ``receipt`` says which."""

    def __init__(self, receipt: "object") -> None:
        super().__init__("Transaction already processed.")
        self.receipt = receipt


class TooManyAttempts(PromoError):
    """The caller got more failed answers in the current window than the limit allows; every
    request of that caller is refused until ``retry_after`` seconds have passed. The refusal
    says nothing about the request itself (validate: whether the code exists)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many invalid promo codes; try again later.")
        self.retry_after = retry_after


class NoAsyncQueue(PromoError):
    """Asynchronous operations were asked for where no queue is configured for them (``sam
    local`` runs no SQS). Nothing was written or queued, and a retry cannot help: unlike a
    configured queue that fails to take the message, which is ``StoreUnavailable``."""


class StoreUnavailable(PromoError):
    """DynamoDB failed (throttled, timed out) after retries; the request may be retried as is."""


class ConcurrentChange(StoreUnavailable):
    """Another change is under way that this one must not race: an add of the same values that
    has not finished (it commits, aborts or expires within seconds), or a switch of the
    tenant's case rule. Nothing was written; the request may be retried as is."""

    def __init__(
        self,
        values: Iterable[str],
        reason: str = "Another add of these promo code values has not finished",
    ) -> None:
        self.values = sorted(set(values))
        named = f": {', '.join(self.values)}" if self.values else ""
        super().__init__(f"{reason}; retry{named}")
