"""streamsink: turn event streams into OpenTelemetry traces (Svix Stream compatible)."""

__version__ = "0.1.0"
