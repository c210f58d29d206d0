"""Open311 GeoReport v2 under /open311/v2 (http://wiki.open311.org/GeoReport_v2).

Every endpoint answers ``.json`` and ``.xml``; errors use the spec's shape
(``[{"code", "description"}]`` / ``<errors><error>``). Requests are created
synchronously, so POST returns the ``service_request_id`` at once and a token is
the request id itself. Status maps to open/closed; contact details are accepted
on POST and never output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from jembatan import clock
from jembatan.http import BodyTooLarge
from services.intake.domain import report as rules
from services.intake.domain.attributes import open311_attribute
from services.intake.entrypoints.dependencies import (
    Open311Access,
    Open311Dep,
    RateLimited,
    ServiceDep,
)
from services.intake.entrypoints.open311_format import (
    Open311Error,
    bounded_int,
    check_format,
    csv_values,
    parse_time,
    render,
    w3c,
    xml_response,
    xml_value,
)
from services.intake.service_layer.commands import SubmitReport
from services.intake.service_layer.core import Category
from services.intake.service_layer.errors import IntakeError
from services.intake.service_layer.search import SearchQuery
from services.intake.service_layer.services import IntakeService

T = TypeVar("T")

PREFIX = "/open311/v2"
SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-28T00:00:00Z"
MAX_RESULTS = 1000
MAX_PAGE = 1000  # page * page_size stays within 1000 * 1000 reports of the date range
DEFAULT_DAYS = 90
OPEN_STATUSES = tuple(s for s in rules.STATUSES if s not in rules.CLOSED_STATUSES)
_DOC_CONTENT: dict[str, Any] = {"content": {"application/json": {}, "text/xml": {}}}
_ERR: dict[str, Any] = {**_DOC_CONTENT, "description": "Open311 error list"}
_RESPONSES: dict[int | str, dict[str, Any]] = {200: _DOC_CONTENT, 400: _ERR, 404: _ERR}


router = APIRouter(prefix=PREFIX, tags=["open311"])


def _check_jurisdiction(access: Open311Access, jurisdiction_id: str | None, fmt: str) -> None:
    if jurisdiction_id and jurisdiction_id != access.jurisdiction:
        raise Open311Error(
            404, f"unknown jurisdiction_id (this server is {access.jurisdiction})", fmt
        )


async def _format(fmt: str, access: Open311Dep, jurisdiction_id: str | None = None) -> str:
    """The answer's format (.json or .xml), once the jurisdiction asked for is this one."""
    fmt = check_format(fmt)
    _check_jurisdiction(access, jurisdiction_id, fmt)
    return fmt


#: A route's ``{fmt}``, checked with its ``jurisdiction_id`` (every GET takes both).
Format = Annotated[str, Depends(_format)]


def _questions(service: IntakeService, code: str) -> list[Any]:
    return service.definitions.attributes(code) if service.definitions else []


def _category(service: IntakeService, code: str) -> Category | None:
    return next((c for c in service.categories if c.id == code), None)


def _service_entry(service: IntakeService, c: Category) -> dict[str, Any]:
    return {
        "service_code": c.id,
        "service_name": c.name.get("en") or c.id,
        "description": c.name.get("id") or "",
        "metadata": bool(_questions(service, c.id)),
        "type": "realtime",
        "keywords": c.group or "",
        "group": c.group or "",
    }


def _request_entry(service: IntakeService, stored: Mapping[str, Any]) -> dict[str, Any]:
    doc = rules.public_view(stored) | {"_id": stored["_id"]}  # what moderation left public
    c = _category(service, doc["category"])
    status = "closed" if doc.get("status") in rules.CLOSED_STATUSES else "open"
    notes = doc.get("status") or ""
    if doc.get("resolution"):
        notes = f"{notes}: {doc['resolution']['note']}"
    photos = doc.get("photos") or []
    return {
        "service_request_id": doc["_id"],
        "status": status,
        "status_notes": notes,
        "service_name": (c.name.get("en") if c else None) or doc["category"],
        "service_code": doc["category"],
        "description": doc.get("description"),
        "agency_responsible": doc.get("agency_id") or "",
        "service_notice": "",
        "requested_datetime": w3c(doc.get("submitted_at")),
        "updated_datetime": w3c(doc.get("updated_at")),
        "expected_datetime": w3c(doc.get("resolve_due")),
        "address": doc.get("address") or "",
        "address_id": "",
        "zipcode": "",
        "lat": doc["location"]["lat"],
        "long": doc["location"]["lon"],
        "media_url": photos[0]["url"] if photos else "",
    }


def call(fn: Callable[[], T], fmt: str) -> T:
    """The service layer's refusal in Open311's error shape (its one translation)."""
    try:
        return fn()
    except IntakeError as exc:
        status = 404 if exc.kind == "not_found" else 400
        detail = exc.message
        if exc.fields:
            detail += " " + "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        raise Open311Error(status, detail, fmt) from None


@router.get("/discovery.{fmt}", responses=_RESPONSES)
def discovery(fmt: str, request: Request) -> Response:
    fmt = check_format(fmt)
    base = str(request.base_url).rstrip("/") + PREFIX
    payload: dict[str, Any] = {
        "changeset": CHANGESET,
        "contact": "Jembatan operators",
        "key_service": "Ask the operators of this Jembatan instance for an api_key.",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    if fmt == "xml":
        top = ET.Element("discovery")
        for k in ("changeset", "contact", "key_service"):
            xml_value(top, k, payload[k])
        eps = ET.SubElement(top, "endpoints")
        for ep in payload["endpoints"]:
            el = ET.SubElement(eps, "endpoint")
            for k, v in ep.items():
                xml_value(el, k, v)
        return xml_response(top)
    return render(fmt, "discovery", None, payload)


@router.get("/services.{fmt}", responses=_RESPONSES)
def list_services(fmt: Format, service: ServiceDep) -> Response:
    entries = [_service_entry(service, c) for c in service.categories]
    return render(fmt, "services", "service", entries)


@router.get("/services/{service_code}.{fmt}", responses=_RESPONSES)
def service_definition(
    service_code: str,
    fmt: Format,
    service: ServiceDep,
) -> Response:
    if _category(service, service_code) is None:
        raise Open311Error(404, f"service_code {service_code[:64]!r} not found", fmt)
    attributes = [open311_attribute(a) for a in _questions(service, service_code)]
    if fmt == "json":
        return render(
            fmt,
            "service_definition",
            None,
            {"service_code": service_code, "attributes": attributes},
        )
    top = ET.Element("service_definition")
    xml_value(top, "service_code", service_code)
    attrs = ET.SubElement(top, "attributes")
    for attr in attributes:
        el = ET.SubElement(attrs, "attribute")
        for k, v in attr.items():
            if k == "values":
                values = ET.SubElement(el, "values")
                for item in v:
                    xml_value(values, "value", item)
            else:
                xml_value(el, k, v)
    return xml_response(top)


@router.post(
    "/requests.{fmt}",
    status_code=201,
    responses={
        200: _DOC_CONTENT,
        201: _DOC_CONTENT,
        400: _ERR,
        403: _ERR,
        404: _ERR,
        413: _ERR,
        429: _ERR,
    },
    dependencies=[RateLimited],
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            k: {"type": "string"}
                            for k in (
                                "api_key",
                                "jurisdiction_id",
                                "service_code",
                                "lat",
                                "long",
                                "address_string",
                                "address_id",
                                "email",
                                "device_id",
                                "account_id",
                                "first_name",
                                "last_name",
                                "phone",
                                "description",
                                "media_url",
                            )
                        },
                        "required": ["api_key", "service_code"],
                    }
                }
            }
        }
    },
)
async def create_request(
    fmt: str, request: Request, service: ServiceDep, access: Open311Dep
) -> Response:
    fmt = check_format(fmt)
    try:
        form = await request.form()
    except BodyTooLarge as exc:
        raise Open311Error(413, str(exc.detail), fmt) from None
    except Exception:
        raise Open311Error(400, "the body must be application/x-www-form-urlencoded", fmt) from None
    # only the body read awaits: submitting reads and writes the store, which blocks, so
    # it runs in the thread pool and other requests go on meanwhile
    return await run_in_threadpool(_create_request, service, access, fmt, form, request)


def _create_request(
    service: IntakeService, access: Open311Access, fmt: str, form: FormData, request: Request
) -> Response:
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    answers: dict[str, Any] = {}
    for k in form:
        if k.startswith("attribute[") and k.endswith("]"):
            values = [v for v in form.getlist(k) if isinstance(v, str)]
            answers[k[len("attribute[") : -1]] = values if len(values) > 1 else values[0]
        elif k.startswith("attribute[") and k.endswith("][]"):  # PHP-style multi values
            values = [v for v in form.getlist(k) if isinstance(v, str)]
            answers[k[len("attribute[") : -3]] = values
    key = fields.get("api_key") or request.query_params.get("api_key")
    if not key or key not in access.api_keys:
        raise Open311Error(403, "invalid or missing api_key", fmt)
    _check_jurisdiction(access, fields.get("jurisdiction_id"), fmt)
    code = fields.get("service_code", "")
    category = _category(service, code)
    if category is None:
        raise Open311Error(400, "service_code is missing or unknown; see services", fmt)
    lat, lon = fields.get("lat"), fields.get("long")
    if not (lat and lon):
        raise Open311Error(
            400,
            "lat and long are required: an address alone cannot be placed in a district",
            fmt,
        )
    try:
        location = {"lat": float(lat), "lon": float(lon)}
    except ValueError:
        raise Open311Error(400, "lat and long must be decimal degrees", fmt) from None
    name = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
    contact = {
        "name": name or None,
        "email": fields.get("email") or None,
        "phone": fields.get("phone") or None,
    }
    photos = []
    if fields.get("media_url"):
        media_id = service.media_id_of_url(fields["media_url"])
        if media_id is None:
            raise Open311Error(
                400,
                "media_url: only photos uploaded to this server are accepted "
                f"({service.public_base_url}/v1/media/<id>, from POST /v1/media); "
                "other URLs are never fetched",
                fmt,
            )
        photos.append(media_id)
    raw = {
        "category": code,
        "photos": photos,
        "attributes": answers,
        "description": fields.get("description") or category.name.get("en", code),
        "location": location,
        "address": fields.get("address_string") or None,
        "contact": contact if any(contact.values()) else None,
        "language": "en" if request.headers.get("accept-language", "").startswith("en") else "id",
    }
    try:
        cmd = SubmitReport.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise Open311Error(400, f"invalid request: {problems}", fmt) from None
    result = call(
        lambda: service.submit(cmd, "open311", request.headers.get("idempotency-key") or None),
        fmt,
    )
    return render(
        fmt,
        "service_requests",
        "request",
        [
            {
                "service_request_id": result.doc["_id"],
                "service_notice": "",
                "account_id": None,
            }
        ],
        status=201 if result.created else 200,
    )


@router.get("/requests.{fmt}", responses=_RESPONSES)
def list_requests(
    fmt: Format,
    service: ServiceDep,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    page: str | None = None,
    page_size: str | None = None,
) -> Response:
    """Newest first. Paging (an extension of the spec): ``page`` (from 1) and
    ``page_size`` (1-1000, default 1000); without them the first 1000 match."""
    size = bounded_int(page_size, "page_size", 1, MAX_RESULTS, MAX_RESULTS, fmt)
    number = bounded_int(page, "page", 1, MAX_PAGE, 1, fmt)
    ids = csv_values(service_request_id)
    if ids:
        if len(ids) > MAX_RESULTS:
            raise Open311Error(400, f"at most {MAX_RESULTS} service_request_id values", fmt)
        q = SearchQuery(ids=ids, limit=MAX_RESULTS)
    else:
        statuses: list[str] = []
        for s in csv_values(status):
            if s == "open":
                statuses += OPEN_STATUSES
            elif s == "closed":
                statuses += sorted(rules.CLOSED_STATUSES)
            else:
                raise Open311Error(400, "status must be open, closed or both", fmt)
        end = parse_time(end_date, "end_date", fmt) if end_date else None
        start = parse_time(start_date, "start_date", fmt) if start_date else None
        if start is None:
            try:
                start = (end or clock.now()) - timedelta(days=DEFAULT_DAYS)
            except OverflowError:
                raise Open311Error(400, "end_date is out of range", fmt) from None
        if end is not None and end < start:
            raise Open311Error(400, "end_date is before start_date", fmt)
        if end is not None and end - start > timedelta(days=DEFAULT_DAYS):
            raise Open311Error(400, f"the date range may span {DEFAULT_DAYS} days at most", fmt)
        q = SearchQuery(
            categories=csv_values(service_code),
            statuses=statuses,
            since=start,
            until=end + timedelta(microseconds=1) if end and end.year < 9999 else None,
            limit=size,
            offset=(number - 1) * size,
        )
    docs, _ = call(lambda: service.search(q), fmt)
    return render(fmt, "service_requests", "request", [_request_entry(service, d) for d in docs])


@router.get("/requests/{request_id}.{fmt}", responses=_RESPONSES)
def get_request(
    request_id: str,
    fmt: Format,
    service: ServiceDep,
) -> Response:
    doc = call(lambda: service.get(request_id), fmt)
    return render(fmt, "service_requests", "request", [_request_entry(service, doc)])


@router.get("/tokens/{token}.{fmt}", responses=_RESPONSES)
def get_token(
    token: str,
    fmt: Format,
    service: ServiceDep,
) -> Response:
    doc = call(lambda: service.get(token), fmt)
    return render(
        fmt, "service_requests", "request", [{"service_request_id": doc["_id"], "token": token}]
    )
