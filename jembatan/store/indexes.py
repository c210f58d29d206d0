"""Which index serves a query: the rule every hot-path query is held to.

MongoDB answers a query without an index by reading the whole collection (a COLLSCAN),
and a sort with a limit that no index gives by reading every match and sorting it in
memory. Both cost in proportion to the collection, so a service that does either per
event slows as it runs. This module decides, from the query alone, whether one of the
collection's indexes bounds it; the fake store of the unit tests refuses any query that
none does (``UnindexedQuery``), so a new query without its index fails the tests that
reach it. docs/architecture.md lists the hot-path queries with the index serving each.

The rule is MongoDB's index-bounds reasoning, kept conservative:

- An index ``(f1, f2, ...)`` bounds a query when the filter pins ``f1`` to values
  (equality or ``$in``) or a range (``$gt``/``$gte``/``$lt``/``$lte``). ``$ne``, ``$nin``
  and ``$exists`` bound nothing: an index scan for them reads most of the collection.
- A sort with a limit must come out of the index: after the leading index fields the
  filter pins by equality, the next index fields are the sort's fields in order, all
  in the index's directions or all reversed (a field written ``-name`` is descending).
  Otherwise the
  server reads every match to sort it. A sort without a limit reads every match anyway,
  so only the filter must be bounded.
- A sort with a limit that an index gives serves even an unbounded filter: the server
  walks the index in order and stops after ``limit`` matches (the newest rule set, a
  page of a list). That walk reads as many entries as it takes to find ``limit``
  matches: cheap for the lists here (no filter, or one most documents pass), and the
  one leniency of the rule (intake's map search by bounding box alone is such a walk).
- ``$or`` is served when each branch is (MongoDB's index union); ``$and`` is merged.
- ``_id`` is always indexed (unique).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Index = tuple[str, ...]

_RANGE = frozenset(("$gt", "$gte", "$lt", "$lte"))
_POINT = frozenset(("$eq", "$in"))


class UnindexedQuery(AssertionError):
    """A query that no index of its collection bounds (raised by the test fakes)."""


def _bound(cond: Any) -> str | None:
    """'point' (equality / $in), 'range', or None (the condition bounds no index scan)."""
    if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
        ops = set(cond)
        if ops & _POINT:
            return "point"
        if ops & _RANGE:
            return "range"
        return None
    return "point"  # a literal value: equality


def _conditions(filter: Mapping[str, Any]) -> tuple[dict[str, str | None], list[Any]]:
    """Per field, its bound (merged over ``$and``), and the ``$or`` branches."""
    bounds: dict[str, str | None] = {}
    ors: list[Any] = []
    for key, cond in filter.items():
        if key == "$and":
            for clause in cond:
                sub, sub_ors = _conditions(clause)
                for f, b in sub.items():
                    bounds[f] = _stronger(bounds.get(f), b)
                ors += sub_ors
        elif key == "$or":
            ors.append(cond)
        else:
            bounds[key] = _stronger(bounds.get(key), _bound(cond))
    return bounds, ors


def _stronger(a: str | None, b: str | None) -> str | None:
    for kind in ("point", "range"):
        if kind in (a, b):
            return kind
    return None


def field_direction(key: str) -> tuple[str, int]:
    """An index key's field and direction: ``-name`` is descending (-1), else 1."""
    return (key[1:], -1) if key.startswith("-") else (key, 1)


def _gives_sort(index: Index, points: set[str], sort: Sequence[tuple[str, int]]) -> bool:
    """Does walking ``index`` (equality-pinned leading fields fixed) yield ``sort``'s order?"""
    rest = [field_direction(k) for k in index]
    while rest and rest[0][0] in points:
        rest.pop(0)
    wanted = [(f, d) for f, d in sort if f not in points]  # a pinned field orders nothing
    if not wanted:
        return True
    if len(wanted) > len(rest) or any(f != rest[i][0] for i, (f, _) in enumerate(wanted)):
        return False
    # walked forwards or backwards: every direction as the index's, or every one reversed
    same = {(d >= 0) == (rest[i][1] >= 0) for i, (_, d) in enumerate(wanted)}
    return len(same) == 1


def serving_index(
    indexes: Sequence[Index],
    filter: Mapping[str, Any],
    sort: Sequence[tuple[str, int]] | None = None,
    limit: int = 0,
) -> Index | None:
    """The index that serves the query (module doc), or None when none does."""
    candidates = [("_id",), *[tuple(i) for i in indexes]]
    bounds, ors = _conditions(filter)
    points = {f for f, b in bounds.items() if b == "point"}
    if bounds.get("_id") == "point":
        return ("_id",)  # one document at most, whatever the sort
    sorted_page = bool(sort) and limit > 0
    for index in candidates:
        bounded = bounds.get(field_direction(index[0])[0]) is not None
        ordered = _gives_sort(index, points, sort or ())
        if sorted_page:
            if ordered:
                return index
        elif bounded:
            return index
    if ors and not sorted_page:
        # every $or branch (with the rest of the filter) must be served on its own
        rest = {k: v for k, v in filter.items() if k != "$or"}
        for branches in ors:
            served = [serving_index(indexes, {**rest, **b}) for b in branches]
            if not all(served):
                return None
        return ("$or",)
    return None


def check(
    collection: str,
    indexes: Sequence[Index],
    filter: Mapping[str, Any],
    sort: Sequence[tuple[str, int]] | None = None,
    limit: int = 0,
) -> Index:
    """The serving index, or UnindexedQuery naming the query."""
    index = serving_index(indexes, filter, sort, limit)
    if index is None:
        raise UnindexedQuery(
            f"no index of {collection!r} serves find({dict(filter)!r}, sort={sort!r}, "
            f"limit={limit}); its indexes: {[('_id',), *indexes]}. Add the index it needs "
            "(and its row in docs/architecture.md)."
        )
    return index
