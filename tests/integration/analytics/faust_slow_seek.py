"""The Faust worker with a slow seek to the committed offsets (fault injection).

``python -m tests.integration.analytics.faust_slow_seek`` runs the worker of
``services.analytics.adapters.faust_app`` with every ``Consumer.perform_seek``
delayed by ``JEMBATAN_TEST_SEEK_DELAY`` seconds, as a loaded broker that answers
the committed-offset lookups slowly does. Faust's own recovery resumed the stream
partitions before that seek, so the records fetched meanwhile were dropped from the
agents' queues and committed past as an offset gap (see ``SeekThenResumeRecovery``);
with the delay, that race happens on every restart instead of now and then.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from faust.transport.consumer import Consumer

from services.analytics.adapters.faust_app import main

DELAY = float(os.environ.get("JEMBATAN_TEST_SEEK_DELAY", "1.0"))
_perform_seek = Consumer.perform_seek


async def _slow_perform_seek(self: Any) -> None:
    await asyncio.sleep(DELAY)
    await _perform_seek(self)


Consumer.perform_seek = _slow_perform_seek  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
