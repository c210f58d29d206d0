"""The shared outbound delivery loop: retry while the policy allows, else give up."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from jembatan.delivery import DeliveryLoop, RetryPolicy, Undelivered
from jembatan.webhooks import WebhookRefused

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def test_the_policy_backs_off_within_bounds_and_gives_up() -> None:
    policy = RetryPolicy(attempts=4, base_delay=2.0, max_delay=5.0)
    rng = random.Random(1)
    for attempt, (low, high) in {1: (1, 2), 2: (2, 4), 3: (2.5, 5)}.items():
        at = policy.next_attempt(attempt, Undelivered("HTTP 503"), NOW, rng)
        assert at is not None and low <= (at - NOW).total_seconds() <= high
    assert policy.next_attempt(4, Undelivered("HTTP 503"), NOW) is None  # the last one
    assert policy.next_attempt(1, Undelivered("HTTP 410", retryable=False), NOW) is None
    # a webhook's refusal is one kind of failed delivery
    assert policy.next_attempt(1, WebhookRefused("refused target", retryable=False), NOW) is None


class Outbox(DeliveryLoop[dict]):  # type: ignore[type-arg]
    def __init__(self, answers: dict[str, list[Undelivered | None]]) -> None:
        super().__init__("test-deliveries", 60, RetryPolicy(3, 1.0, 10.0), now=lambda: NOW)
        self.answers = answers
        self.due = [{"_id": k, "attempts": 0} for k in answers]
        self.log: list[tuple[str, str]] = []

    def claims(self) -> Iterator[dict]:  # type: ignore[type-arg]
        for d in [d for d in self.due if d.get("status") is None]:
            d["attempts"] += 1
            self.log.append(("claim", d["_id"]))
            yield d

    def attempt_number(self, delivery: dict) -> int:  # type: ignore[type-arg]
        return int(delivery["attempts"])

    def send(self, delivery: dict) -> None:  # type: ignore[type-arg]
        self.log.append(("send", delivery["_id"]))
        answer = self.answers[delivery["_id"]].pop(0)
        if answer is not None:
            raise answer

    def delivered(self, delivery: dict) -> None:  # type: ignore[type-arg]
        delivery["status"] = "delivered"

    def retry_later(self, delivery: dict, failure: Undelivered, at: datetime) -> None:  # type: ignore[type-arg]
        assert NOW + timedelta(seconds=0.5) <= at <= NOW + timedelta(seconds=10)
        delivery["last_error"] = failure.reason

    def give_up(self, delivery: dict, failure: Undelivered) -> None:  # type: ignore[type-arg]
        delivery["status"], delivery["last_error"] = "failed", failure.reason


def test_each_delivery_is_claimed_just_before_it_is_sent_and_its_outcome_recorded() -> None:
    loop = Outbox(
        {
            "ok": [None],
            "flaky": [Undelivered("HTTP 503"), None],
            "gone": [Undelivered("HTTP 410", retryable=False)],
            "down": [Undelivered("timeout")] * 3,
        }
    )
    assert loop.send_due() == 1
    assert loop.log[:4] == [("claim", "ok"), ("send", "ok"), ("claim", "flaky"), ("send", "flaky")]
    by_id = {d["_id"]: d for d in loop.due}
    assert by_id["flaky"] == {"_id": "flaky", "attempts": 1, "last_error": "HTTP 503"}
    assert by_id["gone"]["status"] == "failed" and by_id["gone"]["attempts"] == 1
    assert loop.send_due() == 1  # flaky goes through on its second attempt
    assert loop.send_due() == 0
    assert by_id["down"]["status"] == "failed" and by_id["down"]["attempts"] == 3
    assert by_id["down"]["last_error"] == "timeout"
    assert loop.send_due() == 0 and loop.log[-1] == ("send", "down")  # nothing left to send
