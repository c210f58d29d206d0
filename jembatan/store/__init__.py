from jembatan.store.port import (
    Collection,
    Document,
    DocumentStore,
    DuplicateKey,
    StoreUnavailable,
    UpdateResult,
)

__all__ = [
    "Collection",
    "Document",
    "DocumentStore",
    "DuplicateKey",
    "StoreUnavailable",
    "UpdateResult",
]
