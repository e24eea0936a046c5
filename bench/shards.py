"""The shard-count rule behind docs/capacity.md, checked by simulation.

Each claim deletes one entry of the pool's ``available`` index in one shard's partition, and
DynamoDB takes at most 1,000 writes per second per partition. Functions read candidates in
pages of ``page`` keys from a shard picked at random, so shards do not share the load evenly.
This simulates one-second windows of ``rate`` claims and reports how busy the busiest shard
gets, for each shard count: the rule is the smallest count whose busiest shard stays under
the partition limit in (nearly) every window.

    python -m bench.shards [rate] [page]
"""

import random
import sys

PARTITION_LIMIT = 1000  # writes per second per partition


def busiest_shard(rate: int, shards: int, page: int, rng: random.Random) -> int:
    load = [0] * shards
    for _ in range(rate // page):
        load[rng.randrange(shards)] += page
    return max(load)


def required_shards(
    rate: int, page: int = 50, windows: int = 200, seed: int = 7
) -> list[tuple[int, float, int]]:
    rng = random.Random(seed)
    rows = []
    shards = max(1, rate // PARTITION_LIMIT)
    while True:
        peaks = sorted(busiest_shard(rate, shards, page, rng) for _ in range(windows))
        p99 = peaks[int(0.99 * (windows - 1))]
        over = sum(peak > PARTITION_LIMIT for peak in peaks) / windows
        rows.append((shards, over, p99))
        if over == 0:
            return rows
        shards = int(shards * 1.1) + 1


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    page = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print(f"{rate} claims/s, pages of {page}: shards, windows over the limit, p99 busiest shard")
    for shards, over, p99 in required_shards(rate, page):
        print(f"  {shards:5d}  {over:6.1%}  {p99:6d} writes/s")


if __name__ == "__main__":
    main()
