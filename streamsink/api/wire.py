"""The base of every wire model and the field types that both the REST models
(``api.models``) and the sink config models (``api.sink_config``) use."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from streamsink.api.text import surrogate_error
from streamsink.sink_fields import check_headers, check_url


class WireModel(BaseModel):
    """Base of every wire model. Any text in a field (strings, object keys, at
    any depth) must be valid Unicode: a lone UTF-16 surrogate, which JSON's
    ``\\ud800``-style escapes can carry, is a 422 naming the field."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        error = surrogate_error(value)
        if error is not None:
            raise ValueError(error)
        return value


SinkUrl = Annotated[str, AfterValidator(check_url)]
Headers = Annotated[dict[str, str] | None, AfterValidator(check_headers)]
