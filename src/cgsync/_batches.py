"""A checkpoint's pages as dlt items: one Arrow table per table, each CGID once.

A walk may meet a record twice in one checkpoint: it changed while the walk ran and came back
at the cursor's end, or a refresh or a backfill window read it again. Only its last version
may reach the lake, with that version's child rows only. Deduplicating here, in Arrow, lets
the destination skip its own deduplication of the staging tables (dlt's `deduplicated`), which
was the costliest statement of a DuckDB load, and it never mixes the child rows of two versions.

A table that a sync fills from empty is appended to, with no staging and no delete, for as long
as `FirstLoad` sees no record twice (see docs/sync.md).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cgsync._arrow import ArrowPage
from cgsync.settings import PRIMARY_KEY

_PAGE = "_cgsync_page"
_ROW = "_cgsync_row"
_CHILD_KEY = [PRIMARY_KEY, "position"]
FIRST_LOAD_CGID_SPAN = 1 << 27
"""CGIDs a first load tracks (16 MB of bits, touched only where used); beyond them it merges."""
_SPAN_BELOW = FIRST_LOAD_CGID_SPAN // 4


class FirstLoad:
    """Which resources of one sync may append: their tables were empty when it began, and no
    checkpoint has since brought a record that an earlier one loaded.

    A record that changed during the walk comes back at its end: from that checkpoint on the
    resource merges again, which replaces the earlier version. CGIDs are kept as bits from the
    first one seen (they are the system's sequence numbers); one outside the span also ends
    the appending, never the exactness.
    """

    def __init__(self, resources: Collection[str]) -> None:
        self._loaded: dict[str, tuple[int, np.ndarray]] = {}
        self._appending = set(resources)
        self._lock = threading.Lock()  # resources are walked side by side

    def may_append(self, resource: str, cgids: pa.Array) -> bool:
        """True if this checkpoint of `resource` with `cgids` may be appended (then it counts
        as loaded); False once it must merge, for the rest of the sync."""
        with self._lock:
            if resource not in self._appending:
                return False
            keys = cgids.to_numpy()
            if not len(keys):
                return True
            # Room below the first CGID too: a walk in update order is not in CGID order.
            base, bits = self._loaded.get(resource) or (int(keys.min()) - _SPAN_BELOW, None)
            offsets = keys - base
            if offsets.min() < 0 or offsets.max() >= FIRST_LOAD_CGID_SPAN:
                self._appending.discard(resource)
                return False
            if bits is None:
                bits = np.zeros(FIRST_LOAD_CGID_SPAN // 8, dtype=np.uint8)
            bytes_, masks = offsets >> 3, (1 << (offsets & 7)).astype(np.uint8)
            if np.any(bits[bytes_] & masks):
                self._appending.discard(resource)
                self._loaded.pop(resource, None)
                return False
            np.bitwise_or.at(bits, bytes_, masks)
            self._loaded[resource] = (base, bits)
            return True


def checkpoint_tables(resource: str, pages: Iterable[ArrowPage]) -> Iterator[tuple[str, pa.Table]]:
    """`(table name, table)` for the main table `resource` and its children `resource__tags`...,
    each holding the last version of every record among `pages` (in the order they came)."""
    collected = [page for page in pages if page.num_rows]
    if not collected:
        return
    main = pa.concat_tables([page.table for page in collected], promote_options="default")
    cgids = main.column(PRIMARY_KEY)
    duplicated = pc.count_distinct(cgids).as_py() < len(cgids)
    kept_versions = _last_versions(main, collected) if duplicated else None
    if kept_versions is not None:
        main = main.take(kept_versions.column(_ROW))
    yield resource, main.combine_chunks()
    for child in collected[0].children:
        parts = [page.children[child] for page in collected if page.children[child].num_rows]
        if not parts:
            continue
        if kept_versions is None:
            table = pa.concat_tables(parts, promote_options="default")
        else:
            table = _children_of(kept_versions, collected, child)
        yield f"{resource}__{child}", table.combine_chunks()


def _last_versions(main: pa.Table, pages: list[ArrowPage]) -> pa.Table:
    """For each CGID: the page (`_PAGE`) and the row of `main` (`_ROW`) of its last version."""
    page_of_row = np.repeat(np.arange(len(pages)), [page.num_rows for page in pages])
    numbered = pa.table(
        {
            PRIMARY_KEY: main.column(PRIMARY_KEY),
            _PAGE: page_of_row,
            _ROW: np.arange(main.num_rows),
        }
    )
    last = numbered.group_by(PRIMARY_KEY, use_threads=False).aggregate([(_ROW, "max")])
    rows = np.sort(last.column(f"{_ROW}_max").to_numpy())
    return numbered.take(rows)


def _children_of(kept: pa.Table, pages: list[ArrowPage], child: str) -> pa.Table:
    """The child rows of the kept versions only (one row per position if a page held a record
    twice, which only a faulty API does)."""
    numbered = pa.concat_tables(
        [
            page.children[child].append_column(
                _PAGE, pa.array(np.full(page.children[child].num_rows, number))
            )
            for number, page in enumerate(pages)
        ],
        promote_options="default",
    )
    joined = numbered.join(
        kept.select([PRIMARY_KEY, _PAGE]), keys=[PRIMARY_KEY, _PAGE], join_type="inner"
    ).drop_columns([_PAGE])
    joined = joined.append_column(_ROW, pa.array(np.arange(joined.num_rows)))
    last = joined.group_by(_CHILD_KEY, use_threads=False).aggregate([(_ROW, "max")])
    if last.num_rows < joined.num_rows:
        joined = joined.take(np.sort(last.column(f"{_ROW}_max").to_numpy()))
    return joined.drop_columns([_ROW])
