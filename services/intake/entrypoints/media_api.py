"""/v1/media: photos are uploaded first, then named by id in a report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from services.intake.entrypoints.dependencies import RateLimited, ServiceDep
from services.intake.entrypoints.schemas import UploadedMedia, errors

#: Room for the multipart framing around a photo in an upload's body.
UPLOAD_FRAMING_BYTES = 64 * 1024

router = APIRouter(prefix="/v1/media", tags=["media"])


@router.post(
    "",
    status_code=201,
    response_model=UploadedMedia,
    responses=errors(400, 413, 415, 422, 429, 503),
    dependencies=[RateLimited],
)
async def upload_media(
    service: ServiceDep,
    file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP photo")],
) -> dict[str, Any]:
    """Upload a photo first; pass its media_id in a report's photos."""
    data = await file.read(service.media_max_bytes + 1)
    # only the body read awaits: cleaning the image, the synced file write and the store
    # writes block, so they run in the thread pool and other requests go on meanwhile
    return await run_in_threadpool(service.upload_media, data)


@router.get("/{media_id}/meta", response_model=UploadedMedia, responses=errors(404))
def media_meta(media_id: str, service: ServiceDep) -> dict[str, Any]:
    """What a stored photo is (routing checks resolution evidence here)."""
    return service.media_meta(media_id)


@router.get("/{media_id}", responses=errors(404), response_class=Response)
def get_media(media_id: str, service: ServiceDep) -> Response:
    data, content_type = service.get_media(media_id)
    return Response(
        data,
        media_type=content_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=86400, immutable",
        },
    )
