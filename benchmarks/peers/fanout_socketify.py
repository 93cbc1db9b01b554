"""The fan-out room of benchmarks/fanout.py served by socketify's pub/sub (one process)."""

from __future__ import annotations

import os

from socketify import App, CompressOptions, OpCode

app = App()


def on_open(ws: object) -> None:
    ws.subscribe("room")  # type: ignore[attr-defined]


def on_message(ws: object, message: str | bytes, opcode: OpCode) -> None:
    app.publish("room", message, opcode)  # every member, the sender included


app.ws("/ws", {"compression": CompressOptions.DISABLED, "open": on_open, "message": on_message})
app.listen(int(os.environ["PORT"]), lambda config: None)
app.run()
