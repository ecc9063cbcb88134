"""The one HTTP client to sinks: transport, destination policy, export."""
