"""A sink's ``config`` by its ``type``: the models pick the config model from
the body's ``type`` (``config_of_type``), so errors are located under
``config`` and name the keys of that type. The ``poller`` type has no config
keys (``{}``, as Svix defines it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator


class PollerConfigIn(BaseModel):
    """A ``poller`` sink's config: none. Its consumer reads the sink with
    ``GET .../sink/{sink_id}/events``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and data:
            name, more = next(iter(data)), len(data) - 1
            also = f" and {more} more" if more else ""
            raise ValueError(
                f"unknown key {name!r}{also} in config: a poller sink's config has no keys:"
                " send {}"
            )
        return data


class PollerConfigOut(BaseModel):
    pass


def config_of_type(
    models: dict[str, type[BaseModel]], default: str | None, value: Any, info: ValidationInfo
) -> Any:
    """``value`` validated as the config of the body's ``type`` (or ``default``);
    without a valid ``type``, left as is (that field's 422 says why)."""
    kind = info.data.get("type") or default
    model = models.get(kind) if kind else None
    return value if model is None else model.model_validate(value)
