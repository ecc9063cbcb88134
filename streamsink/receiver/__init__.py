"""The local OTLP/HTTP receiver: decoding and its bounded trace store."""
