"""Sample events of one report's life cycle, for the notify tests."""

from __future__ import annotations

from datetime import timedelta

from jembatan import clock
from jembatan.events import catalog as ev

REPORT_ID = "JKT-0001"
POINT = ev.GeoPoint(lat=-6.1754, lon=106.8272)  # Monas, Gambir
DISTRICT = "jakarta-pusat.gambir"
AGENCY = "dinas-bina-marga"
TOKEN = "tracking-token-secret-123"


def submitted(
    report_id: str = REPORT_ID,
    category: str = "road-damage",
    point: ev.GeoPoint = POINT,
    district: str = DISTRICT,
    language: str = "id",
) -> ev.ReportSubmitted:
    return ev.ReportSubmitted(
        report_id=report_id,
        category=category,
        description="Jalan berlubang besar",
        location=point,
        district_id=district,
        city_id="jakarta-pusat",
        language=language,
        channel="web",
        has_contact=True,  # type: ignore[arg-type]
        submitted_at=clock.now(),
    )


def contact(
    report_id: str = REPORT_ID,
    email: str | None = "warga@example.org",
    phone: str | None = None,
    push: str | None = None,
    language: str = "en",
) -> ev.ReporterContact:
    import hashlib

    return ev.ReporterContact(
        report_id=report_id,
        name="Warga",
        email=email,
        phone=phone,
        push_token=push,
        language=language,  # type: ignore[arg-type]
        tracking_token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest(),
    )


def _case(report_id: str, agency: str = AGENCY) -> dict[str, object]:
    return {
        "report_id": report_id,
        "case_id": f"C-{report_id}",
        "agency_id": agency,
        "actor": "system",
        "at": clock.now(),
    }


def routed(report_id: str = REPORT_ID, agency: str = AGENCY) -> ev.CaseRouted:
    now = clock.now()
    return ev.CaseRouted(
        **_case(report_id, agency),
        category="road-damage",  # type: ignore[arg-type]
        district_id=DISTRICT,
        city_id="jakarta-pusat",
        rule_id="r1",
        rules_version=1,
        priority="high",
        ack_due=now + timedelta(hours=4),
        resolve_due=now + timedelta(days=3),
    )


def acknowledged(report_id: str = REPORT_ID) -> ev.CaseAcknowledged:
    return ev.CaseAcknowledged(**_case(report_id), note="Tim meluncur")  # type: ignore[arg-type]


def started(report_id: str = REPORT_ID) -> ev.CaseStarted:
    return ev.CaseStarted(**_case(report_id))  # type: ignore[arg-type]


def resolved(report_id: str = REPORT_ID) -> ev.CaseResolved:
    return ev.CaseResolved(
        **_case(report_id),
        evidence=ev.Evidence(  # type: ignore[arg-type]
            note="Lubang sudah ditambal",
            media=[
                ev.MediaRef(media_id="m1", url="http://media/m1.jpg", content_type="image/jpeg")
            ],
        ),
    )


def rejected(report_id: str = REPORT_ID) -> ev.CaseRejected:
    return ev.CaseRejected(**_case(report_id), reason="Bukan wewenang")  # type: ignore[arg-type]


def duplicate(report_id: str = REPORT_ID) -> ev.CaseDuplicate:
    return ev.CaseDuplicate(
        **_case(report_id),
        original_case_id="C-X",  # type: ignore[arg-type]
        original_report_id="JKT-0000",
        distance_m=12.4,
    )


def transferred(
    report_id: str = REPORT_ID, to: str = "dinas-sumber-daya-air"
) -> ev.CaseTransferred:
    now = clock.now()
    return ev.CaseTransferred(
        **_case(report_id, to),
        from_agency_id=AGENCY,  # type: ignore[arg-type]
        reason="Saluran air",
        ack_due=now + timedelta(hours=4),
        resolve_due=now + timedelta(days=3),
    )


def reopened(report_id: str = REPORT_ID) -> ev.CaseReopened:
    now = clock.now()
    return ev.CaseReopened(
        **_case(report_id),
        reason="Masih berlubang",  # type: ignore[arg-type]
        reopen_count=1,
        ack_due=now + timedelta(hours=4),
        resolve_due=now + timedelta(days=3),
    )


def breached(report_id: str = REPORT_ID) -> ev.CaseSlaBreached:
    return ev.CaseSlaBreached(
        **_case(report_id),
        deadline="acknowledge",  # type: ignore[arg-type]
        due=clock.now(),
    )


def feedback(report_id: str = REPORT_ID, kind: str = "confirm") -> ev.ReportFeedback:
    return ev.ReportFeedback(
        report_id=report_id,
        kind=kind,
        at=clock.now(),  # type: ignore[arg-type]
        reason="x" if kind == "reopen" else None,
        rating=5 if kind == "rating" else None,
    )


def moderated(
    report_id: str = REPORT_ID, action: str = "hide", target: str = "description"
) -> ev.ReportModerated:
    return ev.ReportModerated(
        report_id=report_id,
        action=action,  # type: ignore[arg-type]
        target=target,  # type: ignore[arg-type]
        media_id="m1" if target == "photo" else None,
        reason="insults a neighbour",
        actor="operator:ops",
        at=clock.now(),
    )


def all_report_events(report_id: str = REPORT_ID) -> list[ev.EventData]:
    return [
        submitted(report_id),
        routed(report_id),
        duplicate(report_id),
        acknowledged(report_id),
        started(report_id),
        resolved(report_id),
        rejected(report_id),
        transferred(report_id),
        reopened(report_id),
        breached(report_id),
        feedback(report_id),
    ]
