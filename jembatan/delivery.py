"""The outbound delivery loop, written once: routing's agency webhooks and notify's
deliveries (subscriber webhooks, email, SMS, push, feed) are sent by it.

A pass claims the due deliveries (atomically in the store, so two replicas never send
the same attempt) and attempts each (``send_due``). An attempt that does not get through raises
``Undelivered``; the ``RetryPolicy`` then says when to try again (bounded, jittered
exponential backoff), or that the delivery is given up: the loop calls ``delivered``,
``retry_later`` or ``give_up``, and the service records the outcome its own way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from jembatan import clock
from jembatan.backoff import retry_delay
from jembatan.periodic import PeriodicWorker

D = TypeVar("D")


class Undelivered(Exception):
    """The message did not get through; ``retryable``: trying later may help."""

    def __init__(self, reason: str, retryable: bool = True) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__(reason)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    base_delay: float
    max_delay: float

    def next_attempt(
        self, attempt: int, failure: Undelivered, now: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again after failed attempt number ``attempt`` (from 1); None: give up."""
        if not failure.retryable or attempt >= self.attempts:
            return None
        return now + timedelta(seconds=retry_delay(attempt, self.base_delay, self.max_delay, rng))


class DeliveryLoop(PeriodicWorker, Generic[D]):
    """A worker that sends due deliveries of type ``D``; subclasses say how to claim,
    send and record them. One that claims a whole batch in one commit (notify's
    dispatcher) overrides ``tick`` and calls ``attempt`` or ``undelivered`` itself."""

    def __init__(
        self,
        name: str,
        interval: float,
        policy: RetryPolicy,
        *,
        now: Callable[[], datetime] = clock.now,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(name, interval)
        self.policy = policy
        self.now = now
        self.rng = rng

    # -- what a service supplies --------------------------------------------------------
    def claims(self) -> Iterable[D]:
        """The deliveries this pass sends, each claimed; a generator claims each just
        before it is sent, so that a claim's lease is not spent waiting for the others."""
        raise NotImplementedError

    def attempt_number(self, delivery: D) -> int:
        """Which attempt this claim is (from 1)."""
        raise NotImplementedError

    def send(self, delivery: D) -> None:
        """Send it; ``Undelivered`` when it did not get through."""
        raise NotImplementedError

    def delivered(self, delivery: D) -> None:
        raise NotImplementedError

    def retry_later(self, delivery: D, failure: Undelivered, at: datetime) -> None:
        raise NotImplementedError

    def give_up(self, delivery: D, failure: Undelivered) -> None:
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------------
    def tick(self) -> object:
        return self.send_due()

    def send_due(self) -> int:
        """One pass over the due deliveries; how many were delivered."""
        return sum(self.attempt(d) for d in self.claims())

    def attempt(self, delivery: D) -> bool:
        try:
            self.send(delivery)
        except Undelivered as failure:
            self.undelivered(delivery, failure)
            return False
        self.delivered(delivery)
        return True

    def undelivered(self, delivery: D, failure: Undelivered) -> None:
        """Retry later while the policy allows, else give up."""
        at = self.policy.next_attempt(self.attempt_number(delivery), failure, self.now(), self.rng)
        if at is None:
            self.give_up(delivery, failure)
        else:
            self.retry_later(delivery, failure, at)
