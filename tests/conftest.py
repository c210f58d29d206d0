"""Fixtures for the real servers and for the port adapters.

Integration and contract tests talk to the real Kafka broker and the real
Mongo-wire servers that `make test` starts (or the ones that
KAFKA_BOOTSTRAP_SERVERS / MONGO_URL / MONGO_ATOMIC_URL point at). Under CI a server
that cannot be reached fails the test; elsewhere the test is skipped with one loud line.

Two Mongo-wire servers, for two purposes (docs/architecture.md, "Storage"):
- `mongo_url`: FerretDB, a real database product, for protocol coverage (contract suite,
  service integration tests);
- `mongo_atomic_url`: mongo-java-server ("mongo-atomic"), which keeps single-document
  atomicity across processes as MongoDB does, for the concurrency, replica and fault tests.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jembatan.bus.port import Bus
from jembatan.store.port import DocumentStore
from tests.fakes import FakeBus, FakeStore
from tests.tools import unavailable

KAFKA_DEFAULT = "127.0.0.1:9092"
MONGO_DEFAULT = "mongodb://127.0.0.1:27017/"
MONGO_ATOMIC_DEFAULT = "mongodb://127.0.0.1:27018/"


def _reachable(host_port: str, timeout: float = 2.0) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _need(server: str, address: str) -> None:
    if _reachable(address):
        return
    message = (
        f"{server} is not reachable at {address}: start it with `make infra-up` "
        f"or point the tests at one"
    )
    unavailable(f"the real {server}", message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def _services_listen_on_free_ports() -> Iterator[None]:
    """A service built in a test without explicit ports must not take the defaults: a
    developer's `make run` may be using them (gRPC servers bind when their worker starts)."""
    names = [f"JEMBATAN_{s}_GRPC_PORT" for s in ("INTAKE", "ROUTING", "ANALYTICS")]
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.setdefault(n, str(_free_port()))
    yield
    for n, v in saved.items():
        if v is None:
            os.environ.pop(n, None)
        else:
            os.environ[n] = v


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", KAFKA_DEFAULT)
    _need("Kafka broker", servers.split(",")[0])
    return servers


def _mongo_host_port(url: str) -> str:
    hostport = url.split("://", 1)[-1].split("/", 1)[0].split("@")[-1].split(",")[0]
    return hostport if ":" in hostport else hostport + ":27017"


@pytest.fixture(scope="session")
def mongo_url() -> str:
    url = os.environ.get("MONGO_URL", MONGO_DEFAULT)
    _need("Mongo-wire server", _mongo_host_port(url))
    return url


@pytest.fixture(scope="session")
def mongo_atomic_url() -> str:
    """The Mongo-wire server that is atomic per document across processes (mongo-atomic)."""
    url = os.environ.get("MONGO_ATOMIC_URL", MONGO_ATOMIC_DEFAULT)
    _need("atomic Mongo-wire server (infra/servers.sh up mongo-atomic)", _mongo_host_port(url))
    return url


@pytest.fixture
def unique_name() -> str:
    """A name no other test run uses: topics, groups and databases stay apart."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


#: The adapters each port runs on; the port contract suites (test_bus_contract.py,
#: test_store_contract.py) hold the unit tests' fakes to the same contract, with fixtures
#: of the same name over ``*_AND_FAKE``. Suites that need a real process or file (a crash
#: test) keep the adapters.
BUSES = ["embedded", "kafka"]
BUSES_AND_FAKE = ["fake", *BUSES]
STORES = ["embedded", "mongo", "mongo-atomic"]
STORES_AND_FAKE = ["fake", *STORES]


def open_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    """The bus port under the adapter (or fake) ``request.param`` names, closed after."""
    b: Bus
    if request.param == "fake":
        b = FakeBus()
    elif request.param == "embedded":
        from jembatan.bus.embedded import EmbeddedBus

        b = EmbeddedBus(tmp_path / "log")
    else:
        from jembatan.bus.kafka import KafkaBus

        b = KafkaBus(request.getfixturevalue("kafka_bootstrap"))
    try:
        yield b
    finally:
        b.close()


def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[DocumentStore]:
    """The store port under the adapter (or fake) ``request.param`` names (the Mongo one on
    either test server), dropped and closed after. The fake's refusal of unindexed queries
    is a unit-test rule, not part of the port, so it is off here."""
    s: DocumentStore
    if request.param == "fake":
        s = FakeStore(check_indexes=False)
    elif request.param == "embedded":
        from jembatan.store.embedded import EmbeddedStore

        s = EmbeddedStore(tmp_path / "store")
    else:
        from jembatan.store.mongo import MongoStore

        fixture = "mongo_url" if request.param == "mongo" else "mongo_atomic_url"
        s = MongoStore(request.getfixturevalue(fixture), unique_name)
    try:
        yield s
    finally:
        try:
            s.drop()
        finally:
            s.close()


@pytest.fixture(params=BUSES)
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    """The bus port under both adapters, for the contract suites."""
    yield from open_bus(request, tmp_path)


@pytest.fixture(params=STORES)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[DocumentStore]:
    """The store port under both adapters (the Mongo one on both test servers), for the
    contract suites."""
    yield from open_store(request, tmp_path, unique_name)
