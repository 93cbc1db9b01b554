"""The sans-IO wire layer: bytes in, events or bytes out; no socket, no epoll, no clock.

``h1_request`` parses requests, ``h1_writer`` frames HTTP/1.1 responses (the readable
twin of the worker's inlined hot path), ``chunked`` decodes chunked bodies for both
directions, ``h1_response`` parses responses for the client and the proxy, ``ws_frames``
is the WebSocket codec, ``ws_deflate`` its permessage-deflate extension (RFC 7692),
and ``_abnf`` holds the RFC 9110 character sets they share.
Nothing here imports the engine or the app layer, apart from ``errors`` and ``request``
(the parser's event type).
"""
