"""A function's cold start: no garbage collection until its handler is built.

Importing a handler builds ~75,000 objects that live as long as the process: botocore's loaders,
pydantic's validators, the layer's classes. A collection while they are being built finds
nothing to free among them and only scans them again and again, about a tenth of a cold import
(`make bench`). So the package's first import (every handler imports from it before anything
heavy) raises the first generation's threshold above what any handler's import allocates, and
the first handler built freezes what the import made, so that no later collection scans it
either, and puts the threshold back.

Only a cold import freezes: the first handler built finds no collection since the package was
imported. A process that did other work in between (a test run, the local stack seeding its
table) collected meanwhile, and freezing then would keep whatever garbage it had made; it just
gets its usual threshold back. A process that never builds a handler (promo-admin) keeps the
raised threshold: it collects less often, never not at all.
"""

import gc

# Allocations between collections while a handler is imported: more than the largest handler's
# import leaves tracked (~80,000 objects), so none runs.
_WHILE_IMPORTING = 250_000

_usual_threshold = gc.get_threshold()
_importing = False
_collections_at_start = 0


def begin() -> None:
    global _importing, _collections_at_start
    _importing = True
    _collections_at_start = _collections()
    gc.set_threshold(_WHILE_IMPORTING, *_usual_threshold[1:])


def finished() -> None:
    """The first handler is built: freeze what a cold import made, and collect as usual.

    Freezing also keeps the import's own cyclic garbage (~30,000 small objects) for the life of
    the process; the peak memory of a process is the same either way, and no later full
    collection (~20 ms after a handler's import) scans any of the import's objects again."""
    global _importing
    if _importing:
        _importing = False
        if _collections() == _collections_at_start:
            gc.freeze()
        gc.set_threshold(*_usual_threshold)


def _collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())
