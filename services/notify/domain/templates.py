"""Message templates in Bahasa Indonesia and English (``str.format`` placeholders).

Every message kind has both languages with the same placeholders (a unit test
checks it). ``choose_language`` picks the recipient's language, or the default.
"""

from __future__ import annotations

import string
from typing import Any

from services.notify.domain.model import LANGUAGES, Language

# kind -> language -> (subject, body)
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    # --- to the reporter ------------------------------------------------------------
    "reporter.report.submitted": {
        "id": (
            "Laporan {report_id} diterima",
            "Terima kasih! Laporan Anda ({category}) sudah kami terima dan akan diteruskan "
            "ke instansi yang berwenang.\nPantau statusnya: {report_url}",
        ),
        "en": (
            "Report {report_id} received",
            "Thank you! Your report ({category}) was received and will be passed to the "
            "agency in charge.\nFollow its status: {report_url}",
        ),
    },
    "reporter.case.routed": {
        "id": (
            "Laporan {report_id} diteruskan ke {agency_id}",
            "Laporan Anda telah diteruskan ke {agency_id} (prioritas {priority}). "
            "Target penyelesaian: {resolve_due}.\n{report_url}",
        ),
        "en": (
            "Report {report_id} assigned to {agency_id}",
            "Your report was assigned to {agency_id} (priority {priority}). "
            "Target resolution: {resolve_due}.\n{report_url}",
        ),
    },
    "reporter.case.duplicate": {
        "id": (
            "Laporan {report_id} digabung dengan laporan serupa",
            "Masalah yang sama sudah dilaporkan {distance_m} m dari lokasi Anda. Laporan Anda "
            "mengikuti penanganan laporan {original_report_id}: {original_report_url}",
        ),
        "en": (
            "Report {report_id} merged with a similar report",
            "The same problem was already reported {distance_m} m from your location. Your "
            "report follows report {original_report_id}: {original_report_url}",
        ),
    },
    "reporter.case.acknowledged": {
        "id": (
            "Laporan {report_id} ditanggapi",
            "{agency_id} telah menanggapi laporan Anda. {note}\n{report_url}",
        ),
        "en": (
            "Report {report_id} acknowledged",
            "{agency_id} acknowledged your report. {note}\n{report_url}",
        ),
    },
    "reporter.case.started": {
        "id": (
            "Laporan {report_id} sedang dikerjakan",
            "{agency_id} mulai menangani laporan Anda. {note}\n{report_url}",
        ),
        "en": (
            "Work started on report {report_id}",
            "{agency_id} started work on your report. {note}\n{report_url}",
        ),
    },
    "reporter.case.resolved": {
        "id": (
            "Laporan {report_id} selesai: mohon konfirmasi",
            "{agency_id} menyatakan laporan Anda selesai.\nCatatan: {evidence_note}\n"
            "Foto: {evidence_urls}\nApakah masalahnya benar sudah beres? Konfirmasi atau buka "
            "kembali laporan di {report_url}",
        ),
        "en": (
            "Report {report_id} resolved: please confirm",
            "{agency_id} says your report is resolved.\nNote: {evidence_note}\n"
            "Photos: {evidence_urls}\nIs the problem really fixed? Confirm or reopen the "
            "report at {report_url}",
        ),
    },
    "reporter.case.rejected": {
        "id": (
            "Laporan {report_id} ditolak",
            "{agency_id} menolak laporan Anda. Alasan: {reason}\n{report_url}",
        ),
        "en": (
            "Report {report_id} rejected",
            "{agency_id} rejected your report. Reason: {reason}\n{report_url}",
        ),
    },
    "reporter.case.transferred": {
        "id": (
            "Laporan {report_id} dialihkan ke {agency_id}",
            "Laporan Anda dialihkan dari {from_agency_id} ke {agency_id}. Alasan: {reason}\n"
            "{report_url}",
        ),
        "en": (
            "Report {report_id} transferred to {agency_id}",
            "Your report moved from {from_agency_id} to {agency_id}. Reason: {reason}\n"
            "{report_url}",
        ),
    },
    "reporter.case.reopened": {
        "id": (
            "Laporan {report_id} dibuka kembali",
            "Laporan Anda dibuka kembali dan dikembalikan ke {agency_id}. Alasan: {reason}\n"
            "{report_url}",
        ),
        "en": (
            "Report {report_id} reopened",
            "Your report was reopened and is back with {agency_id}. Reason: {reason}\n{report_url}",
        ),
    },
    "reporter.report.feedback": {
        "id": (
            "Terima kasih atas tanggapan Anda",
            "Tanggapan Anda untuk laporan {report_id} sudah kami catat.\n{report_url}",
        ),
        "en": (
            "Thank you for your feedback",
            "Your feedback on report {report_id} was recorded.\n{report_url}",
        ),
    },
    "reporter.report.supported": {
        "id": (
            "Warga lain juga mengalami masalah ini ({report_id})",
            "{supporters} warga lain mendukung laporan Anda {report_id}: mereka juga "
            "terdampak.\n{report_url}",
        ),
        "en": (
            "Others have the same problem ({report_id})",
            "{supporters} other citizens support your report {report_id}: it affects them "
            "too.\n{report_url}",
        ),
    },
    # --- to area and report subscribers ---------------------------------------------
    "subscriber.report.submitted": {
        "id": (
            "Laporan baru di sekitar Anda: {category} ({report_id})",
            "Laporan baru ({category}) di {district_id}: {description}\n{report_url}",
        ),
        "en": (
            "New report near you: {category} ({report_id})",
            "New report ({category}) in {district_id}: {description}\n{report_url}",
        ),
    },
    "subscriber.case.update": {
        "id": (
            "Laporan {report_id}: {status_label}",
            "Status laporan {report_id} ({category}, {district_id}): {status_label}.\n{report_url}",
        ),
        "en": (
            "Report {report_id}: {status_label}",
            "Status of report {report_id} ({category}, {district_id}): {status_label}.\n"
            "{report_url}",
        ),
    },
    # --- to the agency ----------------------------------------------------------------
    "agency.case.routed": {
        "id": (
            "Kasus baru {case_id} ({priority})",
            "Kasus baru untuk {agency_id}: {category} di {district_id}.\nTanggapi sebelum "
            "{ack_due}, selesaikan sebelum {resolve_due}.\nLaporan: {report_url}",
        ),
        "en": (
            "New case {case_id} ({priority})",
            "New case for {agency_id}: {category} in {district_id}.\nAcknowledge by "
            "{ack_due}, resolve by {resolve_due}.\nReport: {report_url}",
        ),
    },
    "agency.case.transferred": {
        "id": (
            "Kasus {case_id} dialihkan kepada Anda",
            "Kasus {case_id} dialihkan dari {from_agency_id} ke {agency_id}. Alasan: {reason}\n"
            "Tanggapi sebelum {ack_due}, selesaikan sebelum {resolve_due}.\n{report_url}",
        ),
        "en": (
            "Case {case_id} transferred to you",
            "Case {case_id} moved from {from_agency_id} to {agency_id}. Reason: {reason}\n"
            "Acknowledge by {ack_due}, resolve by {resolve_due}.\n{report_url}",
        ),
    },
    "agency.case.reopened": {
        "id": (
            "Kasus {case_id} dibuka kembali oleh pelapor",
            "Pelapor membuka kembali kasus {case_id} (ke-{reopen_count}). Alasan: {reason}\n"
            "Selesaikan sebelum {resolve_due}.\n{report_url}",
        ),
        "en": (
            "Case {case_id} reopened by the reporter",
            "The reporter reopened case {case_id} (time {reopen_count}). Reason: {reason}\n"
            "Resolve by {resolve_due}.\n{report_url}",
        ),
    },
    "agency.case.sla_breached": {
        "id": (
            "Tenggat kasus {case_id} terlewati",
            "Tenggat {deadline_label} kasus {case_id} ({due}) sudah terlewati.\n{report_url}",
        ),
        "en": (
            "Case {case_id} missed its deadline",
            "The {deadline_label} deadline of case {case_id} ({due}) has passed.\n{report_url}",
        ),
    },
    "agency.sla_warning": {
        "id": (
            "Tenggat kasus {case_id} segera berakhir",
            "Tenggat {deadline_label} kasus {case_id} berakhir pada {due}.\n{report_url}",
        ),
        "en": (
            "Case {case_id} deadline approaching",
            "The {deadline_label} deadline of case {case_id} is {due}.\n{report_url}",
        ),
    },
    # --- subscription housekeeping --------------------------------------------------
    "system.confirm": {
        "id": (
            "Konfirmasi langganan Jembatan",
            "Anda (atau seseorang) mendaftarkan alamat ini untuk kabar laporan {target}.\n"
            "Konfirmasi: {confirm_url}\nAbaikan email ini jika bukan Anda.",
        ),
        "en": (
            "Confirm your Jembatan subscription",
            "You (or someone) subscribed this address to report updates for {target}.\n"
            "Confirm: {confirm_url}\nIgnore this email if it was not you.",
        ),
    },
    "system.digest": {
        "id": (
            "Ringkasan: {count} kabar laporan",
            "Berikut {count} kabar terbaru dari langganan Anda:\n{items}",
        ),
        "en": (
            "Digest: {count} report updates",
            "Here are the {count} latest updates from your subscriptions:\n{items}",
        ),
    },
}

#: Appended to every email that goes to a subscriber.
UNSUBSCRIBE_FOOTER: dict[str, str] = {
    "id": "\n\n--\nBerhenti berlangganan: {unsubscribe_url}",
    "en": "\n\n--\nUnsubscribe: {unsubscribe_url}",
}

STATUS_LABELS: dict[str, dict[str, str]] = {
    "case.routed": {"id": "diteruskan ke instansi", "en": "assigned to an agency"},
    "case.duplicate": {
        "id": "digabung dengan laporan serupa",
        "en": "merged with a similar report",
    },
    "case.acknowledged": {"id": "ditanggapi", "en": "acknowledged"},
    "case.started": {"id": "sedang dikerjakan", "en": "work started"},
    "case.resolved": {"id": "selesai", "en": "resolved"},
    "case.rejected": {"id": "ditolak", "en": "rejected"},
    "case.transferred": {"id": "dialihkan", "en": "transferred"},
    "case.reopened": {"id": "dibuka kembali", "en": "reopened"},
}

DEADLINE_LABELS: dict[str, dict[str, str]] = {
    "acknowledge": {"id": "tanggapan", "en": "acknowledgement"},
    "resolve": {"id": "penyelesaian", "en": "resolution"},
}


class TemplateError(KeyError):
    pass


def choose_language(preferred: str | None, default: Language) -> Language:
    return preferred if preferred in LANGUAGES else default  # type: ignore[return-value]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def render(kind: str, language: Language, params: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of a message kind in a language; labels are localised here."""
    try:
        subject, body = TEMPLATES[kind][language]
    except KeyError as exc:
        raise TemplateError(f"no template {kind!r} in {language!r}") from exc
    values = dict(params)
    status = str(values.get("status", "-"))
    values["status_label"] = STATUS_LABELS.get(status, {}).get(language, status)
    deadline = str(values.get("deadline", "-"))
    values["deadline_label"] = DEADLINE_LABELS.get(deadline, {}).get(language, deadline)
    try:
        return subject.format(**values), body.format(**values)
    except KeyError as exc:
        raise TemplateError(f"template {kind!r} needs {exc}") from exc
