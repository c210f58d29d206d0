"""Which store a service opens: MongoDB in distributed mode unless told embedded."""

from __future__ import annotations

from pathlib import Path

from jembatan.backends import open_store
from jembatan.config import CommonSettings
from jembatan.store.embedded import EmbeddedStore
from jembatan.store.mongo import MongoStore


def test_distributed_opens_mongodb_and_embedded_only_when_asked(tmp_path: Path) -> None:
    distributed = CommonSettings(mode="distributed", data_dir=tmp_path)
    store = open_store(distributed, "routing")
    try:
        assert isinstance(store, MongoStore) and store.database == "jembatan_routing"
    finally:
        store.close()
    bench = CommonSettings(mode="distributed", data_dir=tmp_path, store_backend="embedded")
    local = open_store(bench, "routing")
    try:
        assert isinstance(local, EmbeddedStore)
        assert (tmp_path / "store" / "routing").exists()
    finally:
        local.close()
    assert isinstance(open_store(CommonSettings(data_dir=tmp_path), "intake"), EmbeddedStore)
