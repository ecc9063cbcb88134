"""The one HTTP client to sinks (imports nothing here: the API process loads only
``netguard``).

- ``client``: ``DeliveryClient``: prepares a request once per sink, sends it
  through a ``Transport``, classifies the answer (``otlp.answer``);
- ``export``: a whole batch: byte limit, 413 halves, 415 encoding switch;
- ``transport``: the ``Transport`` protocol, ``Request``/``Response``,
  ``MockTransport``, the ``network_wait`` hook of the delivery lanes;
- ``http1`` (+ ``wire``, its answer parser): the raw HTTP/1.1 pool, the default;
- ``httpx_transport``: the httpx fallback (credentials in the URL, a caller's client);
- ``sockets``: the one destination-checked connect, TLS, the one bounded read;
- ``deadline``: the per-request deadline; ``netguard``: the destination policy.

Errors: the transport tree of ``streamsink.errors``.
"""
