"""The engine: the I/O shell around the sans-IO cores (sockets, epoll, fork).

``channel`` holds the interface between the worker's loop and the protocols it
serves besides inline HTTP/1.1: a :class:`~chopin_core._engine.channel.Channel` is an
fd the loop dispatches to, and :class:`~chopin_core._engine.channel.Loop` is all of
the worker a protocol may use.  The channels: ``tls`` (handshakes), ``ws_channel``
(upgraded WebSockets), ``upstream`` (the proxy's exchanges), ``fanout`` and
``backplane`` (topic inboxes); ``protocols`` starts TLS and HTTP/2 and dispatches a
response's takeover (upgrade, proxy).  ``services`` holds the worker's state off its
hot path.  The rest serve the HTTP/1.1 path off its hot lines: ``serving`` (answering
for other protocols, hooks, handler failures), ``streams`` and ``stream_pump``
(response streams), ``awaiting`` and ``tasks`` (handlers that wait), ``bodies``
(request bodies), ``deadlines`` (the timing wheel's checks), ``stopping`` (graceful
stop), ``in_process`` (serving bytes with no socket, for the test client) and
``supervisor`` (the worker processes).
"""
