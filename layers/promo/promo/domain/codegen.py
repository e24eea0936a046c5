"""Random promo-code values that a person can read back without confusing look-alikes."""

import math
import secrets
from collections.abc import Callable, Collection

from promo.domain.errors import CodeSpaceExhausted, InvalidRequest

# No 0/O/o, 1/I/i/l/L: the characters people mistype when reading a code off a screen or paper.
DEFAULT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"

# Stop drawing when the space is this full: past it random draws mostly hit existing values.
_MAX_FILL = 0.5


class CodeGenerator:
    def __init__(self, length: int, alphabet: str = DEFAULT_ALPHABET) -> None:
        if length < 1:
            raise InvalidRequest("Code length must be at least 1.", "length")
        if len(set(alphabet)) != len(alphabet) or len(alphabet) < 2:
            raise InvalidRequest("Alphabet needs at least two distinct characters.", "alphabet")
        self.length = length
        self.alphabet = alphabet

    @property
    def space(self) -> int:
        return int(len(self.alphabet) ** self.length)

    def generate(
        self,
        count: int,
        existing_count: int,
        taken: Callable[[Collection[str]], Collection[str]],
    ) -> list[str]:
        """``count`` distinct new values, none of which ``taken`` reports as existing.

        ``existing_count`` bounds how many values the tenant already holds; ``taken`` checks a
        batch of candidates against the store. The store's conditional write stays the final
        guard against a value created between this check and the write.
        """
        if count < 0:
            raise InvalidRequest("Count must not be negative.", "count")
        if existing_count + count > math.floor(self.space * _MAX_FILL):
            raise CodeSpaceExhausted(
                f"{count} new codes of length {self.length} over {len(self.alphabet)} characters "
                f"cannot be drawn: {existing_count} of {self.space} possible values exist."
            )
        chosen: list[str] = []
        seen: set[str] = set()
        # At most half the space is used, so each round keeps at least half its draws on average.
        for _ in range(64):
            missing = count - len(chosen)
            if missing == 0:
                return chosen
            batch = {self._draw() for _ in range(missing)} - seen
            seen |= batch
            fresh = batch - set(taken(batch))
            chosen.extend(sorted(fresh))
        raise CodeSpaceExhausted("Could not draw enough unused codes; the code space is crowded.")

    def _draw(self) -> str:
        return "".join(secrets.choice(self.alphabet) for _ in range(self.length))
