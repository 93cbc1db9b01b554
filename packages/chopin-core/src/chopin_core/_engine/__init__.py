"""The engine: the I/O shell around the sans-IO cores (sockets, epoll, fork).

``channel`` holds the interface between the worker's loop and the protocols it
serves besides inline HTTP/1.1: a :class:`~chopin_core._engine.channel.Channel` is an
fd the loop dispatches to, and :class:`~chopin_core._engine.channel.Loop` is all of
the worker a protocol may use.  ``ws_channel`` serves an upgraded WebSocket as a channel.
"""
