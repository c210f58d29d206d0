"""Analytics' gRPC face: ``jembatan.v1.AnalyticsService`` for partners.

As thin as the REST router (``api.py``): parse the request, call the same
``AnalyticsQueries`` methods, format the answer into the contract's messages.

- GetDistrictMetrics: a kecamatan id, or a kota id for the city roll-up (the same
  answers as ``GET /v1/districts/{id}`` and ``GET /v1/cities/{id}``).
- GetAgencyMetrics: ``GET /v1/agencies/{id}``.
- GetLeagueTable: the ranked rows of ``GET /v1/league/{districts|cities|agencies}``,
  the first ``limit`` (1 to 100; all ranked rows when 0). Agencies have no display
  name in analytics: their ``name`` is empty.

Rates are 0..1 and durations seconds; the contract's doubles have no "unknown", so a
rate or a duration without any sample (no resolved report, no acknowledgement) is 0:
the counts next to it (``resolved``, ``acknowledged``) say whether there was a sample.

Auth: the metrics are public data, but partners still authenticate (the contract says
so): ``authorization: Bearer <key>`` with the scope ``analytics:read``. Keys are
configured by their SHA-256 (``JEMBATAN_ANALYTICS_PARTNER_KEYS``); embedded mode also
accepts the development partner keys of ``services/demo/dev_keys.json`` (role
``partner``), read when the service is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from jembatan.grpc_gen.jembatan.v1 import analytics_pb2, analytics_pb2_grpc
from jembatan.grpc_server import GrpcServer
from jembatan.http import ApiError, ReadinessCheck
from jembatan.metrics import ServiceMetrics
from jembatan.partner_keys import PartnerKey, PartnerKeys, dev_partner_keys
from services.analytics.entrypoints.api import ID_PATTERN
from services.analytics.service_layer.queries import AnalyticsQueries, NotFound
from services.analytics.settings import READ_SCOPE, AnalyticsSettings
from services.demo import DEV_KEYS_FILE

SERVICE_NAME: str = analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name
SCOPES: dict[str, str] = {
    f"/{SERVICE_NAME}/GetDistrictMetrics": READ_SCOPE,
    f"/{SERVICE_NAME}/GetAgencyMetrics": READ_SCOPE,
    f"/{SERVICE_NAME}/GetLeagueTable": READ_SCOPE,
}
MAX_LIMIT = 100
_ID = re.compile(ID_PATTERN)
_LEAGUES = {
    analytics_pb2.LEAGUE_KIND_DISTRICT: "district",
    analytics_pb2.LEAGUE_KIND_CITY: "city",
    analytics_pb2.LEAGUE_KIND_AGENCY: "agency",
}


# ------------------------------------------------------------------------------ auth
def partner_keys(settings: AnalyticsSettings) -> PartnerKeys:
    keys: list[PartnerKey] = list(settings.analytics_partner_keys)  # configured ones first
    if settings.dev_keys:
        keys += dev_partner_keys(DEV_KEYS_FILE, [READ_SCOPE])
    return PartnerKeys(keys)


# ------------------------------------------------------------------------------ format
def _num(value: float | None) -> float:
    return 0.0 if value is None else float(value)


def follow_up(scope_id: str, m: Mapping[str, Any]) -> analytics_pb2.FollowUpMetrics:
    """The contract's message for the ``metrics`` of a REST answer (``summarize``)."""
    return analytics_pb2.FollowUpMetrics(
        scope_id=scope_id,
        reports_total=m["reports"],
        open_backlog=m["open_backlog"],
        acknowledged=m["acknowledged"],
        resolved=m["resolved"],
        rejected=m["rejected"],
        transferred=m["transferred"],
        reopened=m["reopened"],
        duplicates=m["duplicates"],
        sla_compliance=_num(m["sla"]["compliance"]),
        reopen_rate=_num(m["reopen_rate"]),
        duplicate_rate=_num(m["duplicate_rate"]),
        median_ack_seconds=_num(m["time_to_acknowledge"]["median_seconds"]),
        p90_ack_seconds=_num(m["time_to_acknowledge"]["p90_seconds"]),
        median_resolve_seconds=_num(m["time_to_resolve"]["median_seconds"]),
        p90_resolve_seconds=_num(m["time_to_resolve"]["p90_seconds"]),
        by_category=m["by_category"],
        by_status=m["by_status"],
    )


def league_entry(row: Mapping[str, Any]) -> analytics_pb2.LeagueEntry:
    return analytics_pb2.LeagueEntry(
        rank=row["rank"],
        scope_id=row["id"],
        name=row.get("name") or "",
        score=_num(row["score"]),
        sla_compliance=_num(row["sla_compliance"]),
        reopen_rate=_num(row["reopen_rate"]),
        median_resolve_seconds=_num(row["median_resolve_seconds"]),
        resolved=row["resolved"],
    )


# ------------------------------------------------------------------------------ parse
def _entity_id(value: str, field: str) -> str:
    if not value:
        raise ApiError(422, "invalid_request", f"{field} is required", {field: "required"})
    if not _ID.fullmatch(value):
        raise ApiError(
            422,
            "invalid_request",
            f"{field} is not a catalogue id",
            {field: f"must match {ID_PATTERN}"},
        )
    return value


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, queries: AnalyticsQueries) -> None:
        self.queries = queries

    def GetDistrictMetrics(  # noqa: N802 (the contract's name)
        self, request: analytics_pb2.GetDistrictMetricsRequest, context: grpc.ServicerContext
    ) -> analytics_pb2.GetDistrictMetricsResponse:
        entity = _entity_id(request.district_id, "district_id")
        geo = self.queries.geo
        # a kecamatan first (also one analytics has counts for but no catalogue entry),
        # a kota for the roll-up
        asks: list[Callable[[str], dict[str, Any]]] = [self.queries.district, self.queries.city]
        if entity in geo.city_names and entity not in geo.district_city:
            asks.reverse()
        for ask in asks:
            try:
                body = ask(entity)
            except NotFound:
                continue
            return analytics_pb2.GetDistrictMetricsResponse(
                metrics=follow_up(entity, body["metrics"])
            )
        raise ApiError(
            404, "district_not_found", f"no district or city {entity!r} is known to analytics"
        )

    def GetAgencyMetrics(  # noqa: N802 (the contract's name)
        self, request: analytics_pb2.GetAgencyMetricsRequest, context: grpc.ServicerContext
    ) -> analytics_pb2.GetAgencyMetricsResponse:
        entity = _entity_id(request.agency_id, "agency_id")
        try:
            body = self.queries.agency(entity)
        except NotFound as exc:
            raise ApiError(404, "agency_not_found", str(exc)) from None
        return analytics_pb2.GetAgencyMetricsResponse(metrics=follow_up(entity, body["metrics"]))

    def GetLeagueTable(  # noqa: N802 (the contract's name)
        self, request: analytics_pb2.GetLeagueTableRequest, context: grpc.ServicerContext
    ) -> analytics_pb2.GetLeagueTableResponse:
        fields: dict[str, str] = {}
        scope = _LEAGUES.get(request.kind)
        if scope is None:
            fields["kind"] = "LEAGUE_KIND_DISTRICT, LEAGUE_KIND_CITY or LEAGUE_KIND_AGENCY"
        if not 0 <= request.limit <= MAX_LIMIT:
            fields["limit"] = f"1 to {MAX_LIMIT} (0: all ranked entries)"
        if fields or scope is None:
            raise ApiError(422, "invalid_request", "invalid league table request", fields)
        ranked = self.queries.league(scope)["ranked"]
        rows = ranked[: request.limit] if request.limit else ranked
        return analytics_pb2.GetLeagueTableResponse(entries=[league_entry(r) for r in rows])


def grpc_server(
    settings: AnalyticsSettings,
    queries: AnalyticsQueries,
    metrics: ServiceMetrics,
    readiness: Callable[[], Mapping[str, ReadinessCheck]],
) -> GrpcServer:
    """The gRPC worker of the analytics process (port ``analytics_grpc_port``)."""
    return GrpcServer(
        "analytics",
        settings.http_host,
        settings.analytics_grpc_port,
        metrics,
        authenticate=partner_keys(settings),
        scopes=SCOPES,
        register=[
            (
                analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
                AnalyticsServicer(queries),
                SERVICE_NAME,
            )
        ],
        readiness=readiness,
        limits=settings.grpc_limits(),
    )
