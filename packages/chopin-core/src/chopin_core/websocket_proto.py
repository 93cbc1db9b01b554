"""The sans-IO WebSocket codec under its documented name.

The code lives in :mod:`chopin_core._wire.ws_frames` (RFC 6455) and
:mod:`chopin_core._wire.ws_deflate` (permessage-deflate, RFC 7692).
"""

from ._wire import ws_deflate as _ws_deflate
from ._wire import ws_frames as _ws_frames
from ._wire.ws_deflate import *  # noqa: F403
from ._wire.ws_frames import *  # noqa: F403

__all__ = _ws_frames.__all__ + _ws_deflate.__all__
