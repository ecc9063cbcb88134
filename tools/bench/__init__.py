"""The benchmark (``scripts/bench``): ``run`` orchestrates, ``ceiling`` measures
the in-process transform, ``receiver`` and ``loadgen`` run as processes."""
