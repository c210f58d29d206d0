"""Open311's wire format: its error shape (``[{"code", "description"}]`` /
``<errors><error>``), JSON and XML rendering safe for any stored text, and the
parsing of its query values (every error in the format the request asked for)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import FastAPI, Request, Response

from jembatan import clock

FORMATS = ("json", "xml")


class Open311Error(Exception):
    def __init__(self, status: int, description: str, fmt: str = "json") -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.fmt = fmt if fmt in FORMATS else "json"


#: What XML 1.0 cannot carry even escaped: C0 controls but tab, newline and carriage
#: return; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: What UTF-8 cannot encode (JSON is sent as UTF-8).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids replaced by U+FFFD: one stored report
    with a control character must not make the answer (or a whole listing) unreadable."""
    return _NOT_XML.sub("\ufffd", value)


def json_safe(value: Any) -> Any:
    """``value`` with lone surrogates (accepted by JSON's \\u escapes, not by UTF-8)
    replaced by U+FFFD, in every string of nested lists and dicts."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    return value


def xml_value(parent: ET.Element, tag: str, value: Any) -> None:
    el = ET.SubElement(parent, tag)
    if isinstance(value, list):
        child_tag = {"formats": "format", "keywords": "keyword"}.get(tag, "item")
        for v in value:
            xml_value(el, child_tag, v)
    elif isinstance(value, dict):
        for k, v in value.items():
            xml_value(el, k, v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = xml_text(str(value))


def render(fmt: str, root: str, item: str | None, payload: Any, status: int = 200) -> Response:
    """JSON as the spec shows it; XML with ``root`` wrapping ``item`` elements (or one object)."""
    if fmt == "json":
        return Response(
            json.dumps(json_safe(payload), ensure_ascii=False),
            status_code=status,
            media_type="application/json",
        )
    top = ET.Element(root)
    if item is None:
        for k, v in payload.items():
            xml_value(top, k, v)
    else:
        for entry in payload:
            el = ET.SubElement(top, item)
            for k, v in entry.items():
                xml_value(el, k, v)
    return xml_response(top, status)


def xml_response(top: ET.Element, status: int = 200) -> Response:
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def error_response(exc: Open311Error) -> Response:
    return render(
        exc.fmt,
        "errors",
        "error",
        [{"code": exc.status, "description": exc.description}],
        exc.status,
    )


def install_open311_errors(app: FastAPI) -> None:
    @app.exception_handler(Open311Error)
    async def open311_error(_: Request, exc: Open311Error) -> Response:
        return error_response(exc)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"unknown format {fmt[:20]!r}: use .json or .xml")
    return fmt


def parse_time(value: str, name: str, fmt: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Open311Error(400, f"{name} must be a W3C date-time (ISO 8601)", fmt) from None


def w3c(iso: str | None) -> str | None:
    if not iso:
        return None
    return clock.parse(iso).strftime("%Y-%m-%dT%H:%M:%SZ")


def bounded_int(value: str | None, name: str, low: int, high: int, default: int, fmt: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a whole number", fmt) from None
    if not low <= number <= high:
        raise Open311Error(400, f"{name} must be between {low} and {high}", fmt)
    return number


def csv_values(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]
