"""The Faust worker stuck after its first report events (fault injection).

``python -m tests.integration.analytics.faust_stuck`` runs the worker of
``services.analytics.adapters.faust_app`` whose fetches return nothing once they have
returned a record of the reports topic: its partitions stay assigned, records wait on
them, and nothing more is consumed or committed. That is how a Faust worker was left
after a rebalance (a replica's counts froze after another replica was SIGKILLed); the
stall watch must end such a worker (see ``StallWatch``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from jembatan.events.catalog import REPORTS_TOPIC
from services.analytics.adapters.faust_app import main

_getmany = faust_aiokafka.AIOKafkaConsumerThread.getmany
_stuck = False


async def _getmany_until_stuck(self: Any, active_partitions: Any, timeout: float) -> Any:
    global _stuck
    if _stuck:
        await asyncio.sleep(timeout)
        return {}
    records = await _getmany(self, active_partitions, timeout)
    if any(tp.topic.endswith(REPORTS_TOPIC) and batch for tp, batch in records.items()):
        _stuck = True  # this batch is still handed over; nothing after it
    return records


faust_aiokafka.AIOKafkaConsumerThread.getmany = _getmany_until_stuck  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
