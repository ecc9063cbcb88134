"""Transform engine: V8 runtime, handler input, output validation, the pipeline."""
