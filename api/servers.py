"""Any ASGI app served by a real Uvicorn on a loopback port in a background thread: the local systems of
``make run`` (registrar and supplier simulators) and, in the tests, simulators and receivers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_app(app: Any, port: int = 0, start_timeout: float = 10.0) -> Iterator[str]:
    """Yields the base URL (``http://127.0.0.1:<port>``) while the app is served; shuts it down after.

    The socket is bound before Uvicorn starts, so the port (a free one when ``port`` is 0) is known at once, no
    other process can take it, and a port already in use raises ``OSError`` here instead of in the thread.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on connections whose socket says so, and without it
    # every keep-alive request waits ~40 ms for Nagle and delayed ACKs
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    bound = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{bound}")
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started serving")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {start_timeout} s")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
