"""The Faust worker on a broker whose metadata shows new topics late (fault injection).

``python -m tests.integration.analytics.faust_late_topics`` runs the worker of
``services.analytics.adapters.faust_app`` with every topic the worker declares itself
(the delta topic, the changelogs) created ``JEMBATAN_TEST_TOPIC_DELAY`` seconds after
Faust was told it exists. A loaded KRaft broker does the same for a shorter while:
CreateTopics is answered once the controller has committed the topic, and the broker's
metadata cache shows it a moment later. A member that joins its group in that moment is
assigned none of the topic's partitions (see ``MetadataFirstConsumerThread``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from services.analytics.adapters.faust_app import main

DELAY = float(os.environ.get("JEMBATAN_TEST_TOPIC_DELAY", "3.0"))
_really_create_topic = faust_aiokafka.Transport._really_create_topic
_late: set[asyncio.Task[None]] = set()


async def _late_create_topic(
    self: Any, owner: Any, client: Any, topic: str, *a: Any, **kw: Any
) -> None:
    async def later() -> None:
        await asyncio.sleep(DELAY)
        await _really_create_topic(self, owner, client, topic, *a, **kw)

    task = asyncio.ensure_future(later())
    _late.add(task)
    task.add_done_callback(_late.discard)


faust_aiokafka.Transport._really_create_topic = _late_create_topic  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
