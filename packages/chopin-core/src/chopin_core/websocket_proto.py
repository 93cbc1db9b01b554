"""The sans-IO WebSocket codec under its documented name; the code lives in :mod:`chopin_core._wire.ws_frames`."""

from ._wire import ws_frames as _ws_frames
from ._wire.ws_frames import *  # noqa: F403

__all__ = _ws_frames.__all__
