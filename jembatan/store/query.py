"""Pure MongoDB-subset semantics: filters, updates, upsert seeds, sorting, grouping.

This is the reference the embedded store falls back to whenever a filter or a
sort cannot be expressed exactly in SQL, so it follows MongoDB as closely as the
port's subset needs:

* a dotted path walks into sub-documents and *through arrays* (``"a.b"`` on
  ``{"a": [{"b": 1}, {"b": 2}]}`` yields both 1 and 2); a numeric component also
  indexes an array;
* equality against an array field matches the whole array or any element;
  ``{"f": None}`` matches null *and* a missing field;
* comparisons ($gt/$gte/$lt/$lte) only hold between values of the same BSON type
  class (numbers with numbers, strings with strings, ...); booleans are not
  numbers;
* sort uses the BSON type order (missing/null < numbers < strings < objects <
  arrays < booleans); an array sorts by its smallest element ascending and its
  largest descending;
* upsert seeds the new document with the filter's equality parts.

Values are JSON-compatible: None, bool, int, float, str, list, dict.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

Document = dict[str, Any]


class _Missing:
    """A path that leads nowhere (different from an explicit null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()

FIELD_OPERATORS: Final = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}
)
UPDATE_OPERATORS: Final = frozenset(
    {"$set", "$unset", "$inc", "$push", "$addToSet", "$setOnInsert"}
)
COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}

# BSON canonical type order (the subset JSON can express).
RANK_NULL, RANK_NUMBER, RANK_STRING, RANK_OBJECT, RANK_ARRAY, RANK_BOOL = 0, 1, 2, 3, 4, 5


# --------------------------------------------------------------------- values


def split_path(path: str) -> list[str]:
    if not isinstance(path, str) or not path:
        raise ValueError(f"invalid field path {path!r}")
    parts = path.split(".")
    if any(p == "" or p.startswith("$") for p in parts):
        raise ValueError(f"invalid field path {path!r}")
    return parts


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_rank(value: Any) -> int:
    if value is None or value is MISSING:
        return RANK_NULL
    if isinstance(value, bool):
        return RANK_BOOL
    if isinstance(value, int | float):
        return RANK_NUMBER
    if isinstance(value, str):
        return RANK_STRING
    if isinstance(value, Mapping):
        return RANK_OBJECT
    if isinstance(value, list | tuple):
        return RANK_ARRAY
    raise TypeError(f"not a JSON-compatible value: {type(value).__name__}")


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key ordering values as MongoDB does (BSON order, then value)."""
    rank = type_rank(value)
    if rank == RANK_NULL:
        return (RANK_NULL,)
    if rank == RANK_OBJECT:
        # Field by field: type of the value, then the field name, then the value.
        return (rank, tuple((type_rank(v), k, sort_key(v)) for k, v in value.items()))
    if rank == RANK_ARRAY:
        return (rank, tuple(sort_key(v) for v in value))
    return (rank, value)


def values_equal(a: Any, b: Any) -> bool:
    """BSON equality: same type class, 1 == 1.0, True != 1, field order counts."""
    rank = type_rank(a)
    if rank != type_rank(b):
        return False
    if rank == RANK_OBJECT:
        ia, ib = list(a.items()), list(b.items())
        return len(ia) == len(ib) and all(
            ka == kb and values_equal(va, vb) for (ka, va), (kb, vb) in zip(ia, ib, strict=True)
        )
    if rank == RANK_ARRAY:
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if rank == RANK_NULL:
        return True
    return bool(a == b)


def resolve(doc: Any, parts: Sequence[str]) -> list[Any]:
    """Every value the path reaches (MISSING when it reaches none), Mongo style."""
    if not parts:
        return [doc]
    head, rest = parts[0], parts[1:]
    if isinstance(doc, Mapping):
        return resolve(doc[head], rest) if head in doc else [MISSING]
    if isinstance(doc, list):
        out: list[Any] = []
        if head.isdigit() and int(head) < len(doc):
            out.extend(resolve(doc[int(head)], rest))
        for element in doc:
            if isinstance(element, Mapping):
                out.extend(resolve(element, parts))
        return out or [MISSING]
    return [MISSING]


# -------------------------------------------------------------------- filters


def is_operator_expression(cond: Any) -> bool:
    """True for ``{"$gt": 1, ...}``; False for a literal (including a sub-document)."""
    if not isinstance(cond, Mapping) or not cond:
        return False
    dollar = [str(k).startswith("$") for k in cond]
    if all(dollar):
        return True
    if any(dollar):
        raise ValueError(f"cannot mix operators and fields in {dict(cond)!r}")
    return False


def clauses(op: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{op} needs a non-empty list of filters")
    if not all(isinstance(c, Mapping) for c in value):
        raise ValueError(f"{op} needs a list of filters")
    return list(value)


def matches(doc: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """Whether the document satisfies the filter."""
    for key, cond in filter.items():
        if key == "$and":
            if not all(matches(doc, c) for c in clauses(key, cond)):
                return False
        elif key == "$or":
            if not any(matches(doc, c) for c in clauses(key, cond)):
                return False
        elif key.startswith("$"):
            raise ValueError(f"unsupported top-level operator {key}")
        elif not match_field(doc, key, cond):
            return False
    return True


def match_field(doc: Mapping[str, Any], path: str, cond: Any) -> bool:
    leaves = resolve(doc, split_path(path))
    if is_operator_expression(cond):
        return all(_match_operator(leaves, op, arg) for op, arg in cond.items())
    return _match_equal(leaves, cond)


def _match_equal(leaves: list[Any], value: Any) -> bool:
    for leaf in leaves:
        if leaf is MISSING:
            if value is None:
                return True
            continue
        if values_equal(leaf, value):
            return True
        if isinstance(leaf, list) and any(values_equal(e, value) for e in leaf):
            return True
    return False


def _match_operator(leaves: list[Any], op: str, arg: Any) -> bool:
    if op == "$eq":
        return _match_equal(leaves, arg)
    if op == "$ne":
        return not _match_equal(leaves, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list | tuple):
            raise ValueError(f"{op} needs a list")
        found = any(_match_equal(leaves, v) for v in arg)
        return found if op == "$in" else not found
    if op == "$exists":
        return bool(arg) == any(leaf is not MISSING for leaf in leaves)
    if op in COMPARISONS:
        compare, rank, key = COMPARISONS[op], type_rank(arg), sort_key(arg)
        for leaf in leaves:
            candidates = [None] if leaf is MISSING else [leaf]
            if isinstance(leaf, list):
                candidates.extend(leaf)
            for c in candidates:
                if type_rank(c) == rank and compare(sort_key(c), key):
                    return True
        return False
    raise ValueError(f"unsupported query operator {op}")


# -------------------------------------------------------------------- updates


def validate_update(update: Mapping[str, Any]) -> None:
    if not isinstance(update, Mapping) or not update:
        raise ValueError("an update needs at least one operator")
    seen: list[list[str]] = []
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            raise ValueError(f"unsupported update operator {op!r}")
        if not isinstance(fields, Mapping) or not fields:
            raise ValueError(f"{op} needs a non-empty document of fields")
        for path in fields:
            parts = split_path(path)
            for other in seen:
                n = min(len(parts), len(other))
                if parts[:n] == other[:n]:
                    raise ValueError(f"conflicting update paths {'.'.join(other)!r}, {path!r}")
            seen.append(parts)


def _get(doc: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return MISSING
    return doc


def _container(doc: dict[str, Any], parts: Sequence[str], create: bool) -> Any:
    """The dict or list holding the last path component (None when absent)."""
    node: Any = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            if part not in node or node[part] is None:
                if not create:
                    return None
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and part.isdigit():
            index = int(part)
            if index >= len(node) or node[index] is None:
                if not create:
                    return None
                node.extend([None] * (index + 1 - len(node)))
                node[index] = {}
            node = node[index]
        else:
            if not create:
                return None
            raise ValueError(f"cannot create field {part!r} in a {type(node).__name__}")
    if not isinstance(node, dict | list):
        if not create:
            return None
        raise ValueError(f"cannot create field {parts[-1]!r} in a {type(node).__name__}")
    return node


def _set(doc: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    node = _container(doc, parts, create=True)
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif last.isdigit():
        index = int(last)
        node.extend([None] * (index + 1 - len(node)))
        node[index] = value
    else:
        raise ValueError(f"cannot create field {last!r} in an array")


def _unset(doc: dict[str, Any], parts: Sequence[str]) -> None:
    node = _container(doc, parts, create=False)
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = None  # Mongo leaves a null hole in arrays


def _each(op: str, arg: Any) -> list[Any]:
    if isinstance(arg, Mapping) and any(str(k).startswith("$") for k in arg):
        if set(arg) != {"$each"}:
            raise ValueError(f"{op} supports only the $each modifier")
        if not isinstance(arg["$each"], list | tuple):
            raise ValueError("$each needs a list")
        return copy.deepcopy(list(arg["$each"]))
    return [copy.deepcopy(arg)]


def copy_value(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars): what ``copy.deepcopy``
    gives for documents, several times faster (no memo: documents hold no cycles)."""
    if isinstance(value, dict):
        return {k: copy_value(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copy_value(v) if isinstance(v, dict | list) else v for v in value]
    return copy.deepcopy(value) if not isinstance(value, str | int | float | bool | None) else value


def apply_update(
    doc: Mapping[str, Any], update: Mapping[str, Any], *, inserting: bool = False
) -> Document:
    """The document after the update (a new object; the input is not changed)."""
    validate_update(update)
    new: Document = copy_value(dict(doc))
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, arg in fields.items():
            parts = split_path(path)
            if op in ("$set", "$setOnInsert"):
                _set(new, parts, copy.deepcopy(arg))
            elif op == "$unset":
                _unset(new, parts)
            elif op == "$inc":
                if not is_number(arg):
                    raise ValueError(f"$inc needs a number for {path!r}")
                current = _get(new, parts)
                if current is MISSING:
                    _set(new, parts, arg)
                elif not is_number(current):
                    raise ValueError(f"$inc on non-numeric field {path!r}")
                else:
                    _set(new, parts, current + arg)
            else:  # $push, $addToSet
                items = _each(op, arg)
                current = _get(new, parts)
                if current is MISSING:
                    current = []
                    _set(new, parts, current)
                elif not isinstance(current, list):
                    raise ValueError(f"{op} on non-array field {path!r}")
                for item in items:
                    if op == "$push" or not any(values_equal(item, e) for e in current):
                        current.append(item)
    if "_id" in doc and not values_equal(new.get("_id", MISSING), doc["_id"]):
        raise ValueError("_id is immutable")
    return new


def upsert_seed(filter: Mapping[str, Any]) -> Document:
    """The equality parts of a filter as a document, the start of an upsert."""
    seed: Document = {}

    def visit(f: Mapping[str, Any]) -> None:
        for key, cond in f.items():
            if key == "$and":
                for c in clauses(key, cond):
                    visit(c)
            elif key.startswith("$"):
                continue
            elif is_operator_expression(cond):
                if "$eq" in cond:
                    _set(seed, split_path(key), copy.deepcopy(cond["$eq"]))
            else:
                _set(seed, split_path(key), copy.deepcopy(cond))

    visit(filter)
    return seed


# ------------------------------------------------------------ sort and group


def field_sort_key(doc: Mapping[str, Any], path: str, direction: int) -> tuple[Any, ...]:
    values: list[Any] = []
    empty_array = False
    for leaf in resolve(doc, split_path(path)):
        if leaf is MISSING:
            values.append(None)
        elif isinstance(leaf, list):
            values.extend(leaf)
            empty_array = empty_array or not leaf
        else:
            values.append(leaf)
    if not values:
        return (-1,) if empty_array else (RANK_NULL,)
    keys = [sort_key(v) for v in values]
    return min(keys) if direction > 0 else max(keys)


def check_sort(sort: Iterable[tuple[str, int]] | None) -> list[tuple[str, int]]:
    spec = list(sort or [])
    if len({path for path, _ in spec}) != len(spec):
        raise ValueError("a field may appear only once in a sort")
    for path, direction in spec:
        split_path(path)
        if direction not in (1, -1):
            raise ValueError(f"sort direction must be 1 or -1, not {direction!r}")
    return spec


def sort_documents(docs: list[Document], sort: Iterable[tuple[str, int]] | None) -> list[Document]:
    """Sort stably by the keys (the first key most significant)."""
    out = list(docs)
    for path, direction in reversed(check_sort(sort)):

        def key(doc: Document, p: str = path, s: int = direction) -> tuple[Any, ...]:
            return field_sort_key(doc, p, s)

        out.sort(key=key, reverse=direction < 0)
    return out


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    return value


def expression_value(doc: Any, parts: Sequence[str]) -> Any:
    """``"$a.b"`` in an aggregation: None when missing, a list through arrays."""
    if not parts:
        return doc
    if isinstance(doc, dict):
        return expression_value(doc[parts[0]], parts[1:]) if parts[0] in doc else None
    if isinstance(doc, list):
        out = [expression_value(e, parts) for e in doc if isinstance(e, dict | list)]
        return [v for v in out if v is not None]
    return None


def group_count(
    docs: Iterable[Mapping[str, Any]], by: Sequence[str], sum_field: str | None = None
) -> dict[tuple[Any, ...], float]:
    """``$group`` by the fields with ``{"$sum": 1}`` or ``{"$sum": "$sum_field"}``."""
    paths = [split_path(f) for f in by]
    sum_parts = split_path(sum_field) if sum_field else None
    out: dict[tuple[Any, ...], float] = {}
    for doc in docs:
        key = tuple(_freeze(expression_value(doc, p)) for p in paths)
        if sum_parts is None:
            add: float = 1
        else:
            value = expression_value(doc, sum_parts)
            add = value if is_number(value) else 0  # $sum ignores non-numbers
        out[key] = out.get(key, 0) + add
    return out
