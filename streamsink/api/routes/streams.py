"""Routes of ``/stream``: create, list, get, upsert, patch, delete (by id or uid)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from streamsink.api.deps import RedisDep
from streamsink.api.models import (
    HttpErrorOut,
    ListResponseStreamOut,
    StreamIn,
    StreamOut,
    StreamPatch,
)
from streamsink.api.pagination import ListParams, list_params, list_response, window_for
from streamsink.api.params import StreamIdPath, ms_to_dt
from streamsink.api.responses import ERRORS
from streamsink.storage import streams as store_streams
from streamsink.storage.streams import StreamRecord

router = APIRouter(tags=["Stream"])


def render_stream(record: StreamRecord) -> StreamOut:
    return StreamOut(
        id=record.id,
        uid=record.uid,
        name=record.name,
        created_at=ms_to_dt(record.created_at),
        updated_at=ms_to_dt(record.updated_at),
        metadata=record.metadata,
    )


@router.get(
    "/stream",
    operation_id="v1.streaming.stream.list",
    response_model=ListResponseStreamOut,
    responses=ERRORS,
)
def list_streams(
    client: RedisDep, params: Annotated[ListParams, Depends(list_params)]
) -> dict[str, Any]:
    """List streams (creation order)."""
    page = store_streams.list_streams(client, window_for(params, numeric=True))
    return list_response(page, params, render_stream)


@router.post(
    "/stream",
    status_code=201,
    operation_id="v1.streaming.stream.create",
    response_model=StreamOut,
    responses=ERRORS,
)
def create_stream(body: StreamIn, client: RedisDep) -> StreamOut:
    """Create a stream (409 when the uid is taken)."""
    record = store_streams.create_stream(
        client, name=body.name, uid=body.uid, metadata=body.metadata
    )
    return render_stream(record)


@router.get(
    "/stream/{stream_id}",
    operation_id="v1.streaming.stream.get",
    response_model=StreamOut,
    responses=ERRORS,
)
def get_stream(stream_id: StreamIdPath, client: RedisDep) -> StreamOut:
    """Get a stream by id or uid."""
    return render_stream(store_streams.require_stream(client, stream_id))


@router.put(
    "/stream/{stream_id}",
    operation_id="v1.streaming.stream.upsert",
    response_model=StreamOut,
    responses={
        **ERRORS,
        201: {"model": StreamOut, "description": "Created"},
        400: {
            "model": HttpErrorOut,
            "description": "uid in the body differs from the path, "
            "or the path cannot be a new stream's uid",
        },
    },
)
def upsert_stream(
    stream_id: StreamIdPath, body: StreamIn, client: RedisDep, response: Response
) -> StreamOut:
    """Create (201, with the path as uid) or replace (200) a stream."""
    record, created = store_streams.upsert_stream(
        client, stream_id, name=body.name, uid=body.uid, metadata=body.metadata
    )
    response.status_code = 201 if created else 200
    return render_stream(record)


@router.patch(
    "/stream/{stream_id}",
    operation_id="v1.streaming.stream.patch",
    response_model=StreamOut,
    responses=ERRORS,
)
def patch_stream(stream_id: StreamIdPath, body: StreamPatch, client: RedisDep) -> StreamOut:
    """Change the fields given; ``uid: null`` removes the uid."""
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    if "uid" in sent:
        changes["uid"] = body.uid
    if body.name is not None:
        changes["name"] = body.name
    elif body.description is not None:
        changes["name"] = body.description
    if body.metadata is not None:
        changes["metadata"] = body.metadata
    return render_stream(store_streams.patch_stream(client, stream_id, changes))


@router.delete(
    "/stream/{stream_id}",
    status_code=204,
    operation_id="v1.streaming.stream.delete",
    responses=ERRORS,
)
def delete_stream(stream_id: StreamIdPath, client: RedisDep) -> Response:
    """Delete a stream with its sinks and its events."""
    store_streams.delete_stream(client, stream_id)
    return Response(status_code=204)
