"""With the web face's public URL set, the links in messages open its pages, not JSON."""

from __future__ import annotations

import pytest

from services.notify.domain.tokens import read_token
from services.notify.service_layer.messages import Links
from services.notify.settings import NotifySettings


def test_links_open_the_pages_when_their_url_is_set() -> None:
    api = Links("http://notify.test", "s" * 32, "id")
    pages = Links("http://notify.test", "s" * 32, "id", "https://lapor.example")
    assert api.confirm_url("sub1").startswith("http://notify.test/v1/subscriptions/confirm?token=")
    confirm = pages.confirm_url("sub1")
    unsubscribe = pages.unsubscribe_url("sub1")
    assert confirm.startswith("https://lapor.example/subscriptions/confirm?token=")
    assert unsubscribe.startswith("https://lapor.example/subscriptions/unsubscribe?token=")
    # the same tokens either way: the pages hand them to notify's API unchanged
    assert confirm.split("token=")[1] == api.confirm_url("sub1").split("token=")[1]
    assert read_token("s" * 32, "confirm", confirm.split("token=")[1]) == "sub1"


def test_report_links_follow_the_pages_unless_a_template_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JEMBATAN_NOTIFY_PAGES_URL", "https://lapor.example/")
    assert NotifySettings().report_link_template() == "https://lapor.example/reports/{report_id}"
    monkeypatch.setenv("JEMBATAN_NOTIFY_REPORT_URL_TEMPLATE", "https://app.example/r/{report_id}")
    assert NotifySettings().report_link_template() == "https://app.example/r/{report_id}"
    monkeypatch.delenv("JEMBATAN_NOTIFY_PAGES_URL")
    monkeypatch.delenv("JEMBATAN_NOTIFY_REPORT_URL_TEMPLATE")
    assert NotifySettings().report_link_template().endswith("/v1/reports/{report_id}")
