"""Routes of ``/stream/event-type``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from streamsink.api.deps import RedisDep
from streamsink.api.models import (
    ListResponseStreamEventTypeOut,
    StreamEventTypeIn,
    StreamEventTypeOut,
    StreamEventTypePatch,
)
from streamsink.api.pagination import ListParams, list_params, list_response, window_for
from streamsink.api.params import ms_to_dt
from streamsink.api.responses import ERRORS
from streamsink.resource_ids import NAME_MAX_LEN, NAME_PATTERN
from streamsink.storage import event_types as store_event_types
from streamsink.storage.event_types import EventTypeRecord

router = APIRouter(tags=["Stream Event Type"])

NamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=NAME_MAX_LEN,
        pattern=NAME_PATTERN,
        description="The event type's name",
    ),
]


def render_event_type(record: EventTypeRecord) -> StreamEventTypeOut:
    return StreamEventTypeOut(
        name=record.name,
        description=record.description,
        created_at=ms_to_dt(record.created_at),
        updated_at=ms_to_dt(record.updated_at),
        deprecated=record.deprecated,
        archived=record.archived,
        feature_flags=record.feature_flags,
    )


def _values(body: StreamEventTypeIn) -> dict[str, Any]:
    return {
        "description": body.description,
        "feature_flags": body.feature_flags,
        "deprecated": body.deprecated,
        "archived": body.archived,
    }


@router.get(
    "/stream/event-type",
    operation_id="v1.streaming.event-type.list",
    response_model=ListResponseStreamEventTypeOut,
    responses=ERRORS,
)
def list_event_types(
    client: RedisDep,
    params: Annotated[ListParams, Depends(list_params)],
    include_archived: Annotated[
        bool, Query(description="Include archived (deleted but not expunged) items")
    ] = False,
) -> dict[str, Any]:
    """List event types in name order."""
    window = window_for(params, numeric=False)
    page = store_event_types.list_event_types(client, window, include_archived)
    return list_response(page, params, render_event_type)


@router.post(
    "/stream/event-type",
    status_code=201,
    operation_id="v1.streaming.event-type.create",
    response_model=StreamEventTypeOut,
    responses=ERRORS,
)
def create_event_type(body: StreamEventTypeIn, client: RedisDep) -> StreamEventTypeOut:
    """Create an event type (409 when the name exists)."""
    record = store_event_types.create_event_type(client, body.name, _values(body))
    return render_event_type(record)


@router.get(
    "/stream/event-type/{name}",
    operation_id="v1.streaming.event-type.get",
    response_model=StreamEventTypeOut,
    responses=ERRORS,
)
def get_event_type(name: NamePath, client: RedisDep) -> StreamEventTypeOut:
    return render_event_type(store_event_types.require_event_type(client, name))


@router.put(
    "/stream/event-type/{name}",
    operation_id="v1.streaming.event-type.upsert",
    response_model=StreamEventTypeOut,
    responses={**ERRORS, 201: {"model": StreamEventTypeOut, "description": "Created"}},
)
def upsert_event_type(
    name: NamePath, body: StreamEventTypeIn, client: RedisDep, response: Response
) -> StreamEventTypeOut:
    """Create (201) or replace (200) the event type named in the path."""
    record, created = store_event_types.upsert_event_type(client, name, _values(body))
    response.status_code = 201 if created else 200
    return render_event_type(record)


@router.patch(
    "/stream/event-type/{name}",
    operation_id="v1.streaming.event-type.patch",
    response_model=StreamEventTypeOut,
    responses=ERRORS,
)
def patch_event_type(
    name: NamePath, body: StreamEventTypePatch, client: RedisDep
) -> StreamEventTypeOut:
    changes = body.model_dump(exclude_unset=True)
    return render_event_type(store_event_types.patch_event_type(client, name, changes))


@router.delete(
    "/stream/event-type/{name}",
    status_code=204,
    operation_id="v1.streaming.event-type.delete",
    responses=ERRORS,
)
def delete_event_type(
    name: NamePath,
    client: RedisDep,
    expunge: Annotated[bool, Query(description="Delete entirely instead of archiving")] = False,
) -> Response:
    """Archive the event type, or with ``expunge=true`` delete it entirely."""
    store_event_types.delete_event_type(client, name, expunge=expunge)
    return Response(status_code=204)
