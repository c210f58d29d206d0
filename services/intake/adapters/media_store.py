"""Where photo bytes live: the media port and its two adapters.

- ``FilesystemMediaStore``: files under ``data_dir/media`` (the embedded default).
- ``DocumentMediaStore``: the bytes in chunks in the document store (production on
  MongoDB, like GridFS but through the store port), so every replica serves every photo.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Protocol

from jembatan.store.port import Collection

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHUNK = 255 * 1024


class MediaStore(Protocol):
    def put(self, media_id: str, data: bytes) -> None: ...

    def get(self, media_id: str) -> bytes | None: ...


class FilesystemMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, media_id: str) -> Path:
        if not _SAFE_ID.match(media_id):
            raise ValueError("invalid media id")
        return self.root / media_id[:2] / media_id

    def put(self, media_id: str, data: bytes) -> None:
        path = self._path(media_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def get(self, media_id: str) -> bytes | None:
        try:
            return self._path(media_id).read_bytes()
        except (OSError, ValueError):
            return None


class DocumentMediaStore:
    def __init__(self, chunks: Collection) -> None:
        self.chunks = chunks
        chunks.create_index(["media_id", "n"], unique=True)

    def put(self, media_id: str, data: bytes) -> None:
        count = max(1, -(-len(data) // CHUNK))
        for n in range(count):
            part = data[n * CHUNK : (n + 1) * CHUNK]
            self.chunks.update_one(
                {"_id": f"{media_id}:{n}"},
                {
                    "$set": {
                        "media_id": media_id,
                        "n": n,
                        "of": count,
                        "data": base64.b64encode(part).decode(),
                    }
                },
                upsert=True,
            )

    def get(self, media_id: str) -> bytes | None:
        docs = self.chunks.find({"media_id": media_id}, sort=[("n", 1)])
        if not docs or len(docs) != docs[0]["of"]:
            return None
        return b"".join(base64.b64decode(d["data"]) for d in docs)
