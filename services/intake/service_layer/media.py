"""Photos: uploaded first (checked from their bytes, EXIF stripped), then named by id in
a report; served at their URL unless an operator hid them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from jembatan import clock
from services.intake.adapters import photos
from services.intake.domain.media import sniff_image_type
from services.intake.service_layer.core import IntakeCore
from services.intake.service_layer.errors import IntakeError


class MediaCases(IntakeCore):
    def media_url(self, media_id: str) -> str:
        return f"{self.public_base_url}/v1/media/{media_id}"

    def media_id_of_url(self, url: str) -> str | None:
        """The media id of a photo URL this service handed out, else None (a foreign URL is
        never fetched: the server would become a proxy to anywhere)."""
        prefix = f"{self.public_base_url}/v1/media/"
        media_id = url.strip().removeprefix(prefix)
        if media_id == url.strip() or not media_id.isalnum() or len(media_id) > 64:
            return None
        return media_id

    def upload_media(self, data: bytes) -> dict[str, Any]:
        """Blocking (image decoding, a synced file write, store writes): an async caller
        runs it in a worker thread."""
        if len(data) > self.media_max_bytes:
            self.metrics.media_uploads.labels("too_large").inc()
            raise IntakeError(
                "too_large",
                "media_too_large",
                f"a photo may have at most {self.media_max_bytes} bytes",
                {"file": f"larger than {self.media_max_bytes} bytes"},
            )
        content_type = sniff_image_type(data[:16])
        if content_type is not None:
            try:
                data = photos.clean(data, content_type)  # no EXIF (GPS) is ever stored
            except photos.NotAnImage:
                content_type = None
        if content_type is None:
            self.metrics.media_uploads.labels("bad_type").inc()
            raise IntakeError(
                "unsupported",
                "unsupported_media_type",
                "only JPEG, PNG and WebP photos are accepted (checked from the bytes)",
                {"file": "not a JPEG, PNG or WebP image"},
            )
        media_id = "m" + uuid.uuid4().hex
        self.media.put(media_id, data)
        meta = {
            "_id": media_id,
            "content_type": content_type,
            "size": len(data),
            "created_at": clock.iso(clock.now()),
        }
        self.repo.add_media(meta)
        self.metrics.media_uploads.labels("ok").inc()
        return self.media_ref(meta) | {"size": len(data)}

    def media_ref(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "media_id": meta["_id"],
            "url": self.media_url(meta["_id"]),
            "content_type": meta["content_type"],
        }

    def media_meta(self, media_id: str) -> dict[str, Any]:
        meta = self.repo.find_media(media_id)
        if meta is None:
            raise IntakeError("not_found", "not_found", f"no media {media_id[:64]}")
        return self.media_ref(meta) | {"size": int(meta.get("size", 0))}

    def get_media(self, media_id: str) -> tuple[bytes, str]:
        meta = self.repo.find_media(media_id)
        data = self.media.get(media_id) if meta and not meta.get("hidden") else None
        if meta is None or data is None:
            raise IntakeError("not_found", "not_found", f"no media {media_id}")
        return data, str(meta["content_type"])
