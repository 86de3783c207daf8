"""A checkpoint's pages as dlt items: Arrow tables of about BATCH_ROWS rows, each CGID once.

A walk may meet a record twice: the listings are ordered by primary key, but a backfill's
hand-over re-reads what a window read in an earlier checkpoint, and nothing stops an API from
listing a record again (the refresh and the hand-over leave out what their own checkpoint
read, `cgsync._walks.without`). Within one checkpoint (one load
package) a CGID must come once, so that the destination can skip its own deduplication of the
staging tables (dlt's `deduplicated`, the costliest statement of a DuckDB load) and never mix
the child rows of two versions. So a checkpoint ends before a page that brings a CGID it
already holds; the next checkpoint reads that page again and its merge replaces the older
version. Within a page the last version wins.

A table that a sync fills from empty is appended to, with no staging and no delete, for as long
as `FirstLoad` sees no record twice (see docs/sync.md).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator
from typing import Literal

import numpy as np
import pyarrow as pa

from cgsync._arrow import ArrowPage
from cgsync.settings import PRIMARY_KEY

BATCH_ROWS = 10_000
"""Rows per dlt item: dlt's cost is per item, and the rows of one item are held in memory."""
CGID_SPAN = 1 << 27
"""CGIDs a `CgidSet` holds from its first (16 MB of bits, touched only where used)."""
_SPAN_BELOW = CGID_SPAN // 4
_ROW = "_cgsync_row"

Disposition = Literal["append", "merge"] | None
"""How a batch is loaded: appended, merged, or as the resource says (None)."""


class CgidSet:
    """CGIDs as bits, from a quarter span below the first one seen (they are the system's
    sequence numbers, and a walk in update order is not in CGID order)."""

    def __init__(self) -> None:
        self._base: int | None = None
        self._bits: np.ndarray | None = None

    def add_if_new(self, cgids: pa.Array | pa.ChunkedArray) -> bool:
        """Add `cgids` and return True, or return False (nothing added) if one of them is in
        the set already or outside its span."""
        keys = np.asarray(cgids.to_numpy(), dtype=np.int64)
        if not len(keys):
            return True
        if self._base is None:
            self._base = int(keys.min()) - _SPAN_BELOW
            self._bits = np.zeros(CGID_SPAN // 8, dtype=np.uint8)
        assert self._bits is not None
        offsets = keys - self._base
        if offsets.min() < 0 or offsets.max() >= CGID_SPAN:
            return False
        cells, masks = offsets >> 3, (1 << (offsets & 7)).astype(np.uint8)
        if np.any(self._bits[cells] & masks):
            return False
        np.bitwise_or.at(self._bits, cells, masks)
        return True


class FirstLoad:
    """Which resources of one sync may append: their tables were empty when it began, and no
    batch has since brought a record that an earlier one loaded.

    From the first batch that does (a backfill's hand-over re-reading a window's record, a
    record listed again, or a CGID outside the set's span) the resource merges for the rest of
    the sync, which replaces the earlier version; never the other way round.
    """

    def __init__(self, resources: Collection[str]) -> None:
        self._loaded = {resource: CgidSet() for resource in resources}
        self._lock = threading.Lock()  # resources are walked side by side

    def may_append(self, resource: str, cgids: pa.Array | pa.ChunkedArray) -> bool:
        """True if a batch of `resource` with `cgids` may be appended (then they count as
        loaded); False once it must merge."""
        with self._lock:
            loaded = self._loaded.get(resource)
            if loaded is None:
                return False
            if loaded.add_if_new(cgids):
                return True
            del self._loaded[resource]
            return False


def checkpoint_batches(
    resource: str, pages: Iterable[ArrowPage], first_load: FirstLoad | None = None
) -> Iterator[tuple[str, pa.Table, Disposition]]:
    """`(table name, table, disposition)` for the main table `resource` and its children
    (`resource__tags`...), about BATCH_ROWS rows at a time, each CGID once.

    Stops taking `pages` before one that brings a CGID already yielded: the checkpoint ends
    there, and its walk's cursor stays before that page. The first page is always taken, so
    every checkpoint moves the walk on.
    """
    held = CgidSet()
    pending: list[ArrowPage] = []
    appended = False  # a switch to merge after an appended batch must be said explicitly
    for taken, page in enumerate(map(last_versions, pages)):
        alone = False
        if not held.add_if_new(page.table.column(PRIMARY_KEY)):
            if taken:
                break
            alone = True  # CGIDs too far apart to hold: the page is a checkpoint of its own
        if page.num_rows:
            pending.append(page)
        if alone:
            break
        if sum(held_page.num_rows for held_page in pending) >= BATCH_ROWS:
            batch, disposition = _batch(resource, pending, first_load, appended)
            appended = appended or disposition == "append"
            yield from batch
            pending = []
    if pending:
        yield from _batch(resource, pending, first_load, appended)[0]


def _batch(
    resource: str, pages: list[ArrowPage], first_load: FirstLoad | None, appended: bool
) -> tuple[list[tuple[str, pa.Table, Disposition]], Disposition]:
    main = pa.concat_tables([page.table for page in pages], promote_options="default")
    disposition: Disposition = None
    if first_load is not None and first_load.may_append(resource, main.column(PRIMARY_KEY)):
        disposition = "append"
    elif appended:
        disposition = "merge"
    batch: list[tuple[str, pa.Table, Disposition]] = [(resource, main, disposition)]
    for child in pages[0].children:
        parts = [page.children[child] for page in pages if page.children[child].num_rows]
        if parts:
            table = pa.concat_tables(parts, promote_options="default")
            batch.append((f"{resource}__{child}", table, disposition))
    return batch, disposition


def last_versions(page: ArrowPage) -> ArrowPage:
    """The page with each CGID once, in its last version (only a faulty API repeats one)."""
    cgids = page.table.column(PRIMARY_KEY)
    if len(np.unique(cgids.to_numpy())) == len(cgids):
        return page
    numbered = page.table.append_column(_ROW, pa.array(np.arange(page.num_rows)))
    last = numbered.group_by(PRIMARY_KEY, use_threads=False).aggregate([(_ROW, "max")])
    rows = np.sort(last.column(f"{_ROW}_max").to_numpy())
    table = page.table.take(rows)
    children = {}
    for name, child in page.children.items():
        # Child rows name their parent by CGID only: one row per position is kept.
        numbered = child.append_column(_ROW, pa.array(np.arange(child.num_rows)))
        last = numbered.group_by([PRIMARY_KEY, "position"], use_threads=False).aggregate(
            [(_ROW, "max")]
        )
        children[name] = child.take(np.sort(last.column(f"{_ROW}_max").to_numpy()))
    return ArrowPage(table=table, children=children)
