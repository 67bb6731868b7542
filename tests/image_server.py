"""A real HTTP server on loopback that serves images (and the ways a server can fail) for the
tests of images by reference: ``image_server.url("/img/a.png")``.

Paths:
- ``/img/<name>``: a small PNG (``<name>`` ending ``.jpg``: a JPEG), different per name;
- ``/text/<name>``: a text file, not an image;
- ``/big/<name>``: ``big_size`` bytes, declared in Content-Length; ``/big-chunked/<name>``: the same
  without a length;
- ``/slow/<name>``: the headers, then silence for ``slow_seconds``;
- ``/flaky/<name>``: 503 for the first ``flaky_failures`` requests of a name, then the image;
- ``/redirect/<n>/<name>``: a 302 to ``redirect_to`` + name;
- anything else: 404.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image as PILImage


def image_for(name: str, fmt: str = "PNG") -> bytes:
    seed = sum(name.encode()) % 200
    out = io.BytesIO()
    PILImage.new("RGB", (16 + seed % 7, 12 + seed % 5), (seed, 255 - seed, 90)).save(out, format=fmt)
    return out.getvalue()


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.slow_seconds = 3.0
        self.big_size = 2 * 1024 * 1024
        self.flaky_failures = 1
        self.redirect_to = ""
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def start(self) -> ImageServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: ImageServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_body(self, body: bytes, content_type: str, *, length: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        server = self.server
        server.hits[self.path] += 1
        parts = self.path.split("/", 2)
        kind, name = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if kind == "img":
            fmt = "JPEG" if name.endswith(".jpg") else "PNG"
            self.send_body(image_for(name, fmt), f"image/{fmt.lower()}")
        elif kind == "text":
            self.send_body(b"this is not an image\n" * 10, "text/plain")
        elif kind == "big":
            self.send_body(b"\x89PNG" + b"\0" * (server.big_size - 4), "image/png")
        elif kind == "big-chunked":
            self.send_body(b"\x89PNG" + b"\0" * (server.big_size - 4), "image/png", length=False)
            self.close_connection = True
        elif kind == "slow":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            server.stopping.wait(server.slow_seconds)
        elif kind == "flaky" and server.hits[self.path] <= server.flaky_failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "flaky":
            self.send_body(image_for(name), "image/png")
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", server.redirect_to + name.split("/", 1)[-1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer().start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
