"""The embedded event log: the single-machine adapter of the bus port.

A durable, multi-process, append-only log on a local directory with the
semantics the services rely on from Kafka: topics split into partitions, a key
picks the partition (``zlib.crc32(key) % partitions``; records without a key go
round-robin per producer), per-partition offsets that are ordinals starting at 0,
consumer groups with committed offsets, and at-least-once delivery.

Layout under ``path``::

    <topic>/meta.json        {"partitions": 3, "compact": false, "retention_ms": null}
    <topic>/<partition>.log  frames, appended under an exclusive flock
    _groups/<group>.json     committed offsets {"offsets": {"<topic>": {"<p>": n}}}
    _groups/<group>.lock     flock held by the group's single active member

Frame on disk (big endian)::

    magic "JBF1" | length u32 | crc32 u32 | payload[length]
    payload = timestamp_ms i64 | key_len i32 (-1: None) | key
              | header_count u32 | (name_len u16 | name utf-8 | value_len u32 | value)*
              | value

The CRC covers the length field and the payload. A reader that meets a partial
or corrupt frame at the tail treats it as not written yet (a writer is mid-write
or crashed) and stops there; the next writer, holding the partition lock, finds
the torn tail and truncates it before appending. Nothing is ever deleted:
``compact`` and ``retention_ms`` are recorded in ``meta.json`` but not enforced.

Sending to a topic that does not exist creates it with ``partitions_default``
partitions (lenient, unlike our Kafka setup where auto-create is off: services
must still call ``ensure_topics`` so both adapters behave the same).
``ensure_topics`` never changes the partition count of an existing topic.

Only one member of a consumer group is active at a time (a non-blocking flock on
the group's lock file); any other member is a standby: its polls return nothing
until the active member closes (or its process dies), then it takes over from
the committed offsets. Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import re
import struct
import threading
import time
import weakref
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jembatan.bus.port import BusUnavailable, OutgoingRecord, Record, TopicSpec

__all__ = ["EmbeddedBus", "EmbeddedConsumer", "EmbeddedProducer", "check_partition_file"]

MAGIC = b"JBF1"
_HEAD = struct.Struct(">4sII")  # magic, payload length, crc32(length + payload)
_LEN = struct.Struct(">I")
_TS_KEYLEN = struct.Struct(">qi")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
HEADER_SIZE = _HEAD.size
MIN_PAYLOAD = _TS_KEYLEN.size + _U32.size  # timestamp, key length, header count
MAX_PAYLOAD = 64 * 1024 * 1024
_SCAN_CHUNK = 1024 * 1024
_POLL_INTERVAL = 0.015
_GROUPS_DIR = "_groups"
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


# --------------------------------------------------------------------------- frames


def encode_frame(
    key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]], timestamp_ms: int
) -> bytes:
    """One record as a frame, ready to append."""
    parts: list[bytes] = [_TS_KEYLEN.pack(timestamp_ms, -1 if key is None else len(key))]
    if key is not None:
        parts.append(bytes(key))
    parts.append(_U32.pack(len(headers)))
    for name, hvalue in headers:
        raw_name = name.encode("utf-8")
        if len(raw_name) > 0xFFFF:
            raise ValueError(f"header name too long: {name[:40]!r}...")
        parts += [_U16.pack(len(raw_name)), raw_name, _U32.pack(len(hvalue)), bytes(hvalue)]
    parts.append(bytes(value))
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record of {len(payload)} bytes exceeds the {MAX_PAYLOAD} byte limit")
    length = _LEN.pack(len(payload))
    crc = zlib.crc32(payload, zlib.crc32(length))
    return MAGIC + length + _U32.pack(crc) + payload


def _frame_size_at(buf: bytes | memoryview, pos: int) -> int:
    """Size of the valid frame starting at ``buf[pos]``; 0 if partial or corrupt."""
    if len(buf) - pos < HEADER_SIZE:
        return 0
    magic, length, crc = _HEAD.unpack_from(buf, pos)
    if magic != MAGIC or length < MIN_PAYLOAD or length > MAX_PAYLOAD:
        return 0
    end = pos + HEADER_SIZE + length
    if end > len(buf):
        return 0
    view = memoryview(buf)
    if zlib.crc32(view[pos + HEADER_SIZE : end], zlib.crc32(view[pos + 4 : pos + 8])) != crc:
        return 0
    return HEADER_SIZE + length


def _decode_payload(
    buf: bytes, start: int, end: int, topic: str, partition: int, offset: int
) -> Record:
    ts, key_len = _TS_KEYLEN.unpack_from(buf, start)
    pos = start + _TS_KEYLEN.size
    key: bytes | None = None
    if key_len >= 0:
        key = buf[pos : pos + key_len]
        pos += key_len
    (count,) = _U32.unpack_from(buf, pos)
    pos += _U32.size
    headers: list[tuple[str, bytes]] = []
    for _ in range(count):
        (name_len,) = _U16.unpack_from(buf, pos)
        pos += _U16.size
        name = buf[pos : pos + name_len].decode("utf-8")
        pos += name_len
        (value_len,) = _U32.unpack_from(buf, pos)
        pos += _U32.size
        headers.append((name, buf[pos : pos + value_len]))
        pos += value_len
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=buf[pos:end],
        headers=tuple(headers),
        timestamp_ms=ts,
    )


# --------------------------------------------------------------------------- partition files


def _pread_exact(fd: int, size: int, pos: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, pos)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        pos += len(chunk)
    return b"".join(chunks)


class _PartitionIndex:
    """What is known about one partition file: the valid frames scanned so far.

    ``end`` is the byte position after the last valid frame and ``count`` the
    number of valid frames (the next offset). Readers also keep ``starts``, the
    byte position of every frame (an 8-byte entry per record), so that seeking to
    an offset does not rescan the file.
    """

    def __init__(self, path: Path, keep_starts: bool) -> None:
        self.path = path
        self.end = 0
        self.count = 0
        self.starts: array[int] | None = array("q") if keep_starts else None

    def reset(self) -> None:
        self.end = 0
        self.count = 0
        if self.starts is not None:
            self.starts = array("q")

    def scan(self, fd: int, size: int) -> bool:
        """Index the valid frames in ``[end, size)``; False if a bad/partial tail remains."""
        if size < self.end:  # truncated below what we knew: only after a crash without fsync
            self.reset()
        buf = b""
        base = self.end  # file position of buf[0]
        pos = 0
        while True:
            if base + pos >= size:
                return True
            need = HEADER_SIZE
            if len(buf) - pos >= HEADER_SIZE:
                magic, length, _ = _HEAD.unpack_from(buf, pos)
                if magic != MAGIC or length < MIN_PAYLOAD or length > MAX_PAYLOAD:
                    return False
                need = HEADER_SIZE + length
            if len(buf) - pos < need:
                # Refill: drop consumed bytes and read at least the frame we need.
                base += pos
                buf = buf[pos:]
                pos = 0
                want = min(max(need, _SCAN_CHUNK), size - base) - len(buf)
                if want <= 0:
                    return False  # the file ends inside this frame
                more = _pread_exact(fd, want, base + len(buf))
                if not more:
                    return False
                buf += more
                continue
            frame = _frame_size_at(buf, pos)
            if frame == 0:
                return False
            if self.starts is not None:
                self.starts.append(base + pos)
            pos += frame
            self.end = base + pos
            self.count += 1


def check_partition_file(path: Path | str) -> tuple[int, int, int]:
    """(valid records, bytes they span, file size) of a partition file, for checks and tools."""
    p = Path(path)
    index = _PartitionIndex(p, keep_starts=False)
    fd = os.open(p, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        index.scan(fd, size)
    finally:
        os.close(fd)
    return index.count, index.end, size


class _PartitionReader:
    """Read side of one partition: incremental index plus an fd opened on demand."""

    def __init__(self, topic: str, partition: int, path: Path) -> None:
        self.topic = topic
        self.partition = partition
        self.index = _PartitionIndex(path, keep_starts=True)
        self.fd: int | None = None

    def refresh(self) -> int:
        """Index frames appended since last time; returns the record count."""
        if self.fd is None:
            try:
                self.fd = os.open(self.index.path, os.O_RDONLY)
            except FileNotFoundError:
                return 0
        size = os.fstat(self.fd).st_size
        if size != self.index.end:
            self.index.scan(self.fd, size)
        return self.index.count

    def read(self, offset: int, max_records: int) -> list[Record]:
        index = self.index
        if self.fd is None or offset >= index.count or max_records <= 0:
            return []
        starts = index.starts
        assert starts is not None
        last = min(index.count, offset + max_records)
        begin = starts[offset]
        stop = starts[last] if last < index.count else index.end
        buf = _pread_exact(self.fd, stop - begin, begin)
        records: list[Record] = []
        for ordinal in range(offset, last):
            frame_start = starts[ordinal] - begin
            (length,) = _LEN.unpack_from(buf, frame_start + 4)
            payload_start = frame_start + HEADER_SIZE
            records.append(
                _decode_payload(
                    buf, payload_start, payload_start + length, self.topic, self.partition, ordinal
                )
            )
        return records

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --------------------------------------------------------------------------- helpers


def _validate_topic(name: str) -> None:
    if not _TOPIC_RE.match(name) or name in (".", "..", _GROUPS_DIR):
        raise ValueError(f"invalid topic name {name!r}: use [A-Za-z0-9._-], not {_GROUPS_DIR!r}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _atomic_write_json(path: Path, obj: Any, fsync: bool) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = json.dumps(obj, sort_keys=True).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _flock_until(fd: int, deadline: float) -> None:
    """Exclusive flock, retrying until ``deadline`` (monotonic); BusUnavailable after."""
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            raise BusUnavailable("timed out waiting for a partition lock")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


@dataclass
class _TopicMeta:
    partitions: int
    compact: bool = False
    retention_ms: int | None = None


# --------------------------------------------------------------------------- the bus


class EmbeddedBus:
    """The bus port on a local directory, safe for several processes sharing it."""

    def __init__(self, path: Path | str, partitions_default: int = 3, fsync: bool = True) -> None:
        if partitions_default < 1:
            raise ValueError("partitions_default must be at least 1")
        self.path = Path(path)
        self.partitions_default = partitions_default
        self.fsync = fsync
        self._meta: dict[str, _TopicMeta] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._children: weakref.WeakSet[EmbeddedProducer | EmbeddedConsumer] = weakref.WeakSet()
        self._producer: EmbeddedProducer | None = None
        try:
            (self.path / _GROUPS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BusUnavailable(f"cannot create the log directory {self.path}: {exc}") from exc

    # -- topics

    def topic_meta(self, topic: str) -> _TopicMeta | None:
        """The topic's metadata from disk (cached once seen), or None if it does not exist."""
        meta = self._meta.get(topic)
        if meta is not None:
            return meta
        try:
            raw = json.loads((self.path / topic / "meta.json").read_bytes())
        except FileNotFoundError:
            return None
        meta = _TopicMeta(
            partitions=int(raw["partitions"]),
            compact=bool(raw.get("compact", False)),
            retention_ms=raw.get("retention_ms"),
        )
        with self._lock:
            self._meta[topic] = meta
        return meta

    def _create_topic(self, spec: TopicSpec) -> _TopicMeta:
        _validate_topic(spec.name)
        if spec.partitions < 1:
            raise ValueError(f"topic {spec.name!r}: partitions must be at least 1")
        existing = self.topic_meta(spec.name)
        if existing is not None:
            return existing
        tdir = self.path / spec.name
        tdir.mkdir(parents=True, exist_ok=True)
        # Partition files first, so that a topic whose meta.json exists is complete.
        for p in range(spec.partitions):
            fd = os.open(tdir / f"{p}.log", os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        body: dict[str, Any] = {
            "partitions": spec.partitions,
            "compact": spec.compact,
            "retention_ms": spec.retention_ms,
        }
        tmp = tdir / f".meta.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, json.dumps(body).encode("utf-8"))
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, tdir / "meta.json")  # create-if-absent: the first creator wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        if self.fsync:
            _fsync_dir(tdir)
            _fsync_dir(self.path)
        meta = self.topic_meta(spec.name)
        assert meta is not None
        return meta

    def ensure_topics(self, topics: Iterable[TopicSpec]) -> None:
        self._check_open()
        try:
            for spec in topics:
                self._create_topic(spec)
        except OSError as exc:
            raise BusUnavailable(f"cannot create topics in {self.path}: {exc}") from exc

    def _meta_or_create(self, topic: str) -> _TopicMeta:
        meta = self.topic_meta(topic)
        if meta is None:
            meta = self._create_topic(TopicSpec(topic, self.partitions_default))
        return meta

    # -- factories

    def producer(self) -> EmbeddedProducer:
        """The process's one producer (thread-safe), created on first use, as on Kafka.

        One, not one per call: each producer keeps an open file and an index per
        partition it wrote, and a new one must scan a partition's whole file before
        its first append there.
        """
        self._check_open()
        with self._lock:
            if self._producer is None or self._producer.closed:
                self._producer = EmbeddedProducer(self)
                self._children.add(self._producer)
            return self._producer

    def consumer(
        self, group_id: str, topics: Sequence[str], client_id: str = ""
    ) -> EmbeddedConsumer:
        self._check_open()
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not one string")
        for topic in topics:
            _validate_topic(topic)
        consumer = EmbeddedConsumer(self, group_id, list(dict.fromkeys(topics)), client_id)
        self._children.add(consumer)
        return consumer

    def ping(self, timeout: float = 2.0) -> None:
        if self._closed:
            raise BusUnavailable("the embedded bus is closed")
        probe = self.path / f".ping.{os.getpid()}.{threading.get_ident()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, b"ok")
            finally:
                os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise BusUnavailable(f"the log directory {self.path} is not writable: {exc}") from exc

    def close(self) -> None:
        self._closed = True
        for child in list(self._children):
            child.close()
        self._children.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise BusUnavailable("the embedded bus is closed")


# --------------------------------------------------------------------------- producer


class _PartitionWriter:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.index = _PartitionIndex(path, keep_starts=False)

    def append(self, frames: list[bytes], fsync: bool, deadline: float) -> None:
        _flock_until(self.fd, deadline)
        try:
            size = os.fstat(self.fd).st_size
            if size != self.index.end and not self.index.scan(self.fd, size):
                # A torn or corrupt tail (a writer crashed mid-frame): nobody else can be
                # writing while we hold the lock, so it will never complete. Cut it off.
                os.ftruncate(self.fd, self.index.end)
            _write_all(self.fd, b"".join(frames))
            if fsync:
                os.fsync(self.fd)
            self.index.end += sum(len(f) for f in frames)
            self.index.count += len(frames)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


class EmbeddedProducer:
    """Appends records; ``send`` returns once every record is written (and fsynced)."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._writers: dict[tuple[str, int], _PartitionWriter] = {}
        self._round_robin: dict[str, int] = {}
        self._lock = threading.Lock()
        self.closed = False

    def _partition(self, topic: str, key: bytes | None, partitions: int) -> int:
        if key is not None:
            return zlib.crc32(key) % partitions
        nxt = self._round_robin.get(topic)
        if nxt is None:
            nxt = random.randrange(partitions)
        self._round_robin[topic] = nxt + 1
        return nxt % partitions

    def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            if self.closed:
                raise BusUnavailable("the producer is closed")
            batches: dict[tuple[str, int], list[bytes]] = {}
            try:
                for rec in records:
                    _validate_topic(rec.topic)
                    meta = self._bus._meta_or_create(rec.topic)
                    p = self._partition(rec.topic, rec.key, meta.partitions)
                    frame = encode_frame(rec.key, rec.value, tuple(rec.headers), now_ms)
                    batches.setdefault((rec.topic, p), []).append(frame)
                for (topic, p), frames in batches.items():
                    writer = self._writers.get((topic, p))
                    if writer is None:
                        writer = _PartitionWriter(self._bus.path / topic / f"{p}.log")
                        self._writers[(topic, p)] = writer
                    writer.append(frames, self._bus.fsync, deadline)
            except OSError as exc:
                raise BusUnavailable(f"embedded log write failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for writer in self._writers.values():
                with contextlib.suppress(OSError):
                    writer.close()
            self._writers.clear()


# --------------------------------------------------------------------------- consumer


class EmbeddedConsumer:
    """The member of a consumer group; only the holder of the group lock reads."""

    def __init__(self, bus: EmbeddedBus, group_id: str, topics: list[str], client_id: str) -> None:
        if not group_id:
            raise ValueError("group_id must not be empty")
        self.group_id = group_id
        self.client_id = client_id
        self.topics = topics
        self._bus = bus
        safe = quote(group_id, safe="-_.")
        self._offsets_path = bus.path / _GROUPS_DIR / f"{safe}.json"
        self._lock_fd: int | None = os.open(
            bus.path / _GROUPS_DIR / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o644
        )
        self._active = False
        self._closed = False
        self._mutex = threading.Lock()
        self._readers: dict[str, list[_PartitionReader]] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._next_start = 0  # rotates the partition visited first, for fairness
        self._try_activate()

    @property
    def active(self) -> bool:
        """True while this member holds the group lock (False: standby)."""
        return self._active

    def _try_activate(self) -> bool:
        if self._active:
            return True
        if self._lock_fd is None:
            return False
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._active = True
        self._committed = self._load_committed()
        self._positions = dict(self._committed)
        return True

    def _load_committed(self) -> dict[tuple[str, int], int]:
        try:
            raw = json.loads(self._offsets_path.read_bytes())
        except FileNotFoundError:
            return {}
        out: dict[tuple[str, int], int] = {}
        for topic, parts in raw.get("offsets", {}).items():
            for p, off in parts.items():
                out[(topic, int(p))] = int(off)
        return out

    def _partition_readers(self) -> Iterator[_PartitionReader]:
        for topic in self.topics:
            readers = self._readers.get(topic)
            if readers is None:
                meta = self._bus.topic_meta(topic)  # topics may be created after we subscribe
                if meta is None:
                    continue
                tdir = self._bus.path / topic
                readers = [
                    _PartitionReader(topic, p, tdir / f"{p}.log") for p in range(meta.partitions)
                ]
                self._readers[topic] = readers
            yield from readers

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._mutex:
            self._check_open()
            while True:
                try:
                    if self._try_activate():
                        records = self._read_once(max_records)
                        if records:
                            return records
                except OSError as exc:
                    raise BusUnavailable(f"embedded log read failed: {exc}") from exc
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                time.sleep(min(_POLL_INTERVAL, remaining))

    def _read_once(self, max_records: int) -> list[Record]:
        readers = list(self._partition_readers())
        if not readers:
            return []
        out: list[Record] = []
        n = len(readers)
        start = self._next_start % n
        self._next_start += 1
        for i in range(n):
            if len(out) >= max_records:
                break
            reader = readers[(start + i) % n]
            tp = (reader.topic, reader.partition)
            pos = self._positions.get(tp, 0)
            if reader.refresh() <= pos:
                continue
            got = reader.read(pos, max_records - len(out))
            if got:
                self._positions[tp] = got[-1].offset + 1
                out.extend(got)
        return out

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        with self._mutex:
            self._check_open()
            if not positions:
                return
            if not self._try_activate():
                # A standby owns no partitions (like a Kafka member after a rebalance):
                # it has read nothing, so there is nothing of its own to commit.
                return
            merged = dict(self._committed)
            for (topic, p), off in positions.items():
                if off < 0:
                    raise ValueError(f"negative offset {off} for {topic}[{p}]")
                merged[(topic, int(p))] = int(off)
            body: dict[str, dict[str, dict[str, int]]] = {"offsets": {}}
            for (topic, p), off in sorted(merged.items()):
                body["offsets"].setdefault(topic, {})[str(p)] = off
            try:
                _atomic_write_json(self._offsets_path, body, self._bus.fsync)
            except OSError as exc:
                raise BusUnavailable(f"cannot store committed offsets: {exc}") from exc
            self._committed = merged

    def rewind(self) -> None:
        with self._mutex:
            self._check_open()
            if self._active:
                self._positions = dict(self._committed)

    def lag(self) -> int:
        with self._mutex:
            self._check_open()
            committed = self._committed if self._active else self._load_committed()
            total = 0
            for reader in self._partition_readers():
                count = reader.refresh()
                total += max(0, count - committed.get((reader.topic, reader.partition), 0))
            return total

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            for readers in self._readers.values():
                for reader in readers:
                    reader.close()
            self._readers.clear()
            if self._lock_fd is not None:
                # Closing the descriptor releases the flock: a standby member takes over.
                os.close(self._lock_fd)
                self._lock_fd = None
            self._active = False
