"""Searching reports: filters, newest first, paged by an opaque cursor (or an offset for
Open311), and the open-data export that walks every page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from jembatan.store.port import Document
from services.intake.domain.search import ReportCriteria
from services.intake.service_layer.core import IntakeCore
from services.intake.service_layer.errors import invalid

MAX_PAGE = 100


@dataclass(frozen=True)
class SearchQuery(ReportCriteria):
    """The criteria, and the page asked for."""

    limit: int = 20
    cursor: str | None = None
    offset: int = 0  # Open311 page/page_size (bounded by the caller); REST uses the cursor


def encode_cursor(doc: Mapping[str, Any]) -> str:
    raw = json.dumps([doc["submitted_at"], doc["_id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, rid = json.loads(raw)
        if not isinstance(at, str) or not isinstance(rid, str):
            raise ValueError("bad cursor parts")
        return at, rid
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError) as exc:
        raise invalid({"cursor": "not a cursor returned by this API"}) from exc


class SearchCases(IntakeCore):
    def search(self, q: SearchQuery) -> tuple[list[Document], str | None]:
        limit = max(1, min(q.limit, 1000))
        criteria = replace(q, before=decode_cursor(q.cursor) if q.cursor else None)
        docs = self.repo.search(criteria, limit + 1, skip=q.offset)
        next_cursor = encode_cursor(docs[limit - 1]) if len(docs) > limit else None
        return docs[:limit], next_cursor

    def export(self, q: SearchQuery, batch: int = 500) -> Iterator[Document]:
        """Every report the query matches, newest first, read ``batch`` at a time by cursor
        (one page in memory whatever the size of the export; the (submitted_at, _id) order
        uses the same indexes as search)."""
        cursor = q.cursor
        while True:
            docs, cursor = self.search(replace(q, limit=batch, cursor=cursor))
            yield from docs
            if cursor is None:
                return
