"""Lost conditional writes between independent instances, by simulation (docs/capacity.md).

Each of ``instances`` instances claims as ``promo.store.codes.claims`` does: it reads a page
of ``page`` keys in index order from a random point of a random shard, tries them from the
far end back, and on a lost write drops the rest of its page and reads afresh (``--forward``:
in index order, as claims did before, for comparison). Instances take turns in a
random order each round (one attempt each), the most interleaved schedule; reads are
instantaneous, so what is measured is the cost of held pages, not of slow requests.

``drain`` empties a pool and reports lost writes per issued code over it and over its last
tenth (to hold against ``make bench``'s Lambda shape, which runs on a real DynamoDB Local);
``steady`` keeps a large pool at a constant size (each claimed code replaced), for scales the
machine cannot run, such as 1,000 instances on 300 shards.

    python -m bench.conflicts
"""

import bisect
import random
import sys


class Pool:
    def __init__(self, codes: int, shards: int, rng: random.Random) -> None:
        self.rng = rng
        self.shards: list[list[float]] = [[] for _ in range(shards)]
        for _ in range(codes):
            self.add()

    def add(self) -> None:
        bisect.insort(self.shards[self.rng.randrange(len(self.shards))], self.rng.random())

    def size(self) -> int:
        return sum(len(keys) for keys in self.shards)

    def page(self, size: int) -> list[tuple[int, float]]:
        """``size`` keys in index order from a random point of a random non-empty shard."""
        candidates = [n for n, keys in enumerate(self.shards) if keys]
        if not candidates:
            return []
        shard = self.rng.choice(candidates)
        keys = self.shards[shard]
        start = bisect.bisect_left(keys, self.rng.random())
        taken = [keys[(start + i) % len(keys)] for i in range(min(size, len(keys)))]
        if "--forward" not in sys.argv:
            taken.reverse()
        return [(shard, key) for key in taken]

    def claim(self, shard: int, key: float) -> bool:
        keys = self.shards[shard]
        at = bisect.bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            del keys[at]
            return True
        return False


def run(
    instances: int, shards: int, page: int, codes: int, claims: int, refill: bool, seed: int = 7
) -> list[int]:
    """Lost writes before each issued code, in the order codes were issued."""
    rng = random.Random(seed)
    pool = Pool(codes, shards, rng)
    pages: list[list[tuple[int, float]]] = [[] for _ in range(instances)]
    lost_before: list[int] = []
    losses = [0] * instances
    while len(lost_before) < claims:
        order = list(range(instances))
        rng.shuffle(order)
        for me in order:
            if not pages[me]:
                pages[me] = pool.page(page)
                if not pages[me]:
                    return lost_before  # the pool is empty
            shard, key = pages[me].pop(0)
            if pool.claim(shard, key):
                lost_before.append(losses[me])
                losses[me] = 0
                if refill:
                    pool.add()
            else:
                losses[me] += 1
                pages[me] = []
    return lost_before


def drain(instances: int, shards: int, page: int, codes: int) -> tuple[float, float]:
    lost = run(instances, shards, page, codes, codes, refill=False)
    tail = lost[-len(lost) // 10 :]
    return sum(lost) / len(lost), sum(tail) / len(tail)


def steady(instances: int, shards: int, page: int, codes: int, claims: int) -> float:
    lost = run(instances, shards, page, codes, claims, refill=True)
    return sum(lost) / len(lost)


def main() -> None:
    print("drain of 2,000 codes on 4 shards (the bench's Lambda shape), pages of 50:")
    print("  instances  lost per issued code (whole pool, last 10%)")
    for instances in (4, 16, 32):
        whole, tail = drain(instances, 4, 50, 2000)
        print(f"  {instances:9d}  {whole:.3f}  {tail:.3f}")
    print("steady state, pool kept at its size, pages of 50: lost per issued code")
    for instances, shards, codes in [
        (32, 4, 2_000),
        (32, 4, 20_000),
        (100, 30, 100_000),
        (1000, 300, 1_000_000),
        (1000, 300, 10_000_000),
    ]:
        if codes > 1_000_000 and "--large" not in sys.argv:
            continue
        claims = 20 * instances
        rate = steady(instances, shards, 50, codes, claims)
        print(f"  {instances:5d} instances, {shards:3d} shards, {codes:>10,} codes: {rate:.4f}")


if __name__ == "__main__":
    main()
