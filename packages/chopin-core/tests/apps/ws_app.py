"""WebSocket endpoints for the real-socket tests (serve with WORKERS=1)."""

from __future__ import annotations

from chopin_core import Context, Response, Router
from chopin_core.websocket import WebSocket, WebSocketHandler

router = Router()
closes: list[tuple[str, int, str]] = []  # this worker's record of on_close calls


class Echo(WebSocketHandler):
    def on_open(self, ws: WebSocket) -> None:
        ws.state["count"] = 0

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        ws.state["count"] += 1
        if message == "boom":
            raise RuntimeError("handler failed")
        if message == "bye":
            ws.close(4000, "asked to leave")
            return
        ws.send(message)

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        closes.append((ws.ctx.req.path, code, reason))


class Room(WebSocketHandler):
    def on_open(self, ws: WebSocket) -> None:
        ws.subscribe(ws.ctx.param("room") or "lobby")
        ws.send(f"joined {ws.subprotocol}")

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        ws.publish(ws.ctx.param("room") or "lobby", message)


router.websocket("/echo", Echo)
router.websocket("/small", Echo, max_message_size=1024)
router.websocket("/plain", Echo, compression=False)
router.websocket("/room/:room", Room, subprotocols=("chat", "superchat"))


@router.get("/closes")
def recorded_closes(ctx: Context) -> Response:
    return ctx.json(closes)


app = router
