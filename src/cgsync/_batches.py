"""A checkpoint's pages as dlt items: Arrow tables of about BATCH_ROWS rows, each CGID once.

A walk may meet a record twice: the listings are ordered by primary key, but nothing stops an
API from listing a record again (the refresh window and a backfill's hand-over leave out what
their own checkpoint read, `cgsync._walks.without`). Within one checkpoint (one load package)
a CGID comes once: a checkpoint ends before a page that brings a CGID it already holds, and
the next checkpoint reads that page again, so its merge replaces the older version, child
rows included. dlt's own deduplication of staging would keep an arbitrary version and could
mix two versions' child rows. Within a page the last version wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from cgsync._arrow import REJECTED_TABLE_SCHEMA, ArrowPage
from cgsync.settings import PRIMARY_KEY, REJECTED_VALUES_TABLE, SYNCED_AT_COLUMN

BATCH_ROWS = 5_000
"""Rows per dlt item: dlt's cost is per item, and the rows of one item are held in memory
(twice, while they are joined), per resource: half of 10,000 took about 15 MB off the peak of
a 1M-record load at the same speed."""
CGID_SPAN = 1 << 27
"""CGIDs a `CgidSet` holds from its first (16 MB of bits, touched only where used)."""
_SPAN_BELOW = CGID_SPAN // 4
_ROW = "_cgsync_row"


class CgidSet:
    """CGIDs as bits, from a quarter span below the first one seen (they are the system's
    sequence numbers, but a listing need not come in CGID order)."""

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


def checkpoint_batches(resource: str, pages: Iterable[ArrowPage]) -> Iterator[tuple[str, pa.Table]]:
    """`(table name, table)` for the main table `resource` and its children (`resource__tags`...),
    about BATCH_ROWS rows at a time, each CGID once.

    Stops taking `pages` before one that brings a CGID already yielded: the checkpoint ends
    there, and its walk's cursor stays before that page. The first page is always taken, so
    every checkpoint moves the walk on.
    """
    held = CgidSet()
    pending: list[ArrowPage] = []
    for taken, page in enumerate(map(last_versions, pages)):
        added = held.add_if_new(page.table.column(PRIMARY_KEY))
        if not added and taken:
            break
        if page.num_rows:
            pending.append(page)
        if not added:  # the first page, its CGIDs too far apart to hold: a checkpoint alone
            break
        if sum(held_page.num_rows for held_page in pending) >= BATCH_ROWS:
            yield from _batch(resource, pending)
            pending = []
    yield from _batch(resource, pending)


def _batch(resource: str, pages: list[ArrowPage]) -> Iterator[tuple[str, pa.Table]]:
    if not pages:
        return
    yield resource, pa.concat_tables([page.table for page in pages], promote_options="default")
    for child in pages[0].children:
        parts = [page.children[child] for page in pages if page.children[child].num_rows]
        if parts:
            yield f"{resource}__{child}", pa.concat_tables(parts, promote_options="default")
    rejected = [_rejected_rows(resource, page) for page in pages if page.rejected.num_rows]
    if rejected:
        yield REJECTED_VALUES_TABLE, pa.concat_tables(rejected)


def _rejected_rows(resource: str, page: ArrowPage) -> pa.Table:
    """The page's rejected values as rows of the lake's table of them."""
    count = page.rejected.num_rows
    synced_at = page.table.column(SYNCED_AT_COLUMN)[0]
    return pa.Table.from_arrays(
        [
            pa.repeat(pa.scalar(resource), count),
            *page.rejected.columns,
            pa.repeat(synced_at, count),
        ],
        schema=REJECTED_TABLE_SCHEMA,
    )


def last_versions(page: ArrowPage) -> ArrowPage:
    """The page with each CGID once, in its last version (only a faulty API repeats one)."""
    cgids = page.table.column(PRIMARY_KEY)
    if len(np.unique(cgids.to_numpy())) == len(cgids):
        return page
    return ArrowPage(
        rejected=page.rejected,
        table=_last_rows(page.table, [PRIMARY_KEY]),
        # Child rows name their parent by CGID only: one row per position is kept.
        children={
            name: _last_rows(child, [PRIMARY_KEY, "position"])
            for name, child in page.children.items()
        },
    )


def _last_rows(table: pa.Table, keys: list[str]) -> pa.Table:
    """The last row of `table` for each value of `keys`, in the table's order."""
    numbered = table.append_column(_ROW, pa.array(np.arange(table.num_rows)))
    last = numbered.group_by(keys, use_threads=False).aggregate([(_ROW, "max")])
    return table.take(np.sort(last.column(f"{_ROW}_max").to_numpy()))
