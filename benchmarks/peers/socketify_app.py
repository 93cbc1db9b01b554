"""socketify.py peer using the native App API; uWS adds Date and Server itself.

Run with `PORT=8080 python benchmarks/peers/socketify_app.py`.
"""

import os
from typing import Any

import orjson
from socketify import App  # type: ignore[import-untyped]


def plaintext(res: Any, req: Any) -> None:
    res.send(b"Hello, World!", content_type=b"text/plain")


def json_(res: Any, req: Any) -> None:
    res.send(orjson.dumps({"message": "Hello, World!"}), content_type=b"application/json")


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    app = App()
    app.get("/plaintext", plaintext)
    app.get("/json", json_)
    app.listen({"port": port, "host": "127.0.0.1"})
    app.run()


if __name__ == "__main__":
    main()
