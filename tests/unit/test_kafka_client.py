"""The Kafka client as installed: the settings that decide its cost per record."""

from __future__ import annotations

from kafka.record import util
from kafka.record._crc32c import crc as crc32c_in_python


def test_kafka_python_checksums_record_batches_in_c() -> None:
    # Every batch produced or fetched is checksummed (CRC-32C). kafka-python falls back
    # to a pure-Python loop, about 0.1 ms per KB, when the `crc32c` package is missing:
    # in Kafka mode that was a sixth of intake's submission cost.
    assert util._crc32c is not crc32c_in_python, "pip install crc32c (requirements.txt)"
    data = memoryview(b"jembatan, laporan warga " * 64)
    assert util.calc_crc32c(data) == crc32c_in_python(data)
