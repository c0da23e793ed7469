"""A local HTTP server with Range support, in a thread, that counts what it serves.

It serves the files of one folder (HEAD and GET, single ``bytes=a-b`` ranges and
multi-range requests answered as ``multipart/byteranges``), records every request and the
body bytes sent, and can be told to answer the next N requests with 503 (transient), every
request for a path with a given status (permanent), to drop the connection without an answer
or to send half a body and close (the next GETs, or every one), or to answer slowly.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"(\d*)-(\d*)")


@dataclass
class ServerState:
    """What the server did and what it is told to do."""

    root: Path
    bytes_sent: int = 0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    fail_next: int = 0  # answer this many more requests with 503
    failures_sent: int = 0
    status_for: dict[str, int] = field(default_factory=dict)  # URL path -> status, always
    fail_after_bytes: dict[str, int] = field(default_factory=dict)  # URL path -> 500 once this many bytes went
    delay_s: float = 0.0  # latency added before each answer (a distant server)
    faults: list[str] = field(default_factory=list)  # the next GETs: "drop" (close, no answer), "truncate"
    always_fail: str | None = None  # "drop" or "truncate" every GET
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_counts(self) -> None:
        with self.lock:
            self.bytes_sent = 0
            self.requests.clear()


def _handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(body=True)

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if state.delay_s:
                time.sleep(state.delay_s)
            with state.lock:
                state.requests.append((self.command, path, self.headers.get("Range")))
                if state.fail_next > 0:
                    state.fail_next -= 1
                    state.failures_sent += 1
                    return self._status(503)
                status = state.status_for.get(path)
                limit = state.fail_after_bytes.get(path)
                if limit is not None and state.bytes_sent >= limit:
                    status = 500
            if status is not None:
                return self._status(status)
            with state.lock:
                fault = state.always_fail or (state.faults.pop(0) if state.faults and body else None)
            if fault == "drop" and body:
                self.close_connection = True
                return self.connection.shutdown(socket.SHUT_RDWR)
            file = state.root / path.lstrip("/")
            if not file.is_file():
                return self._status(404)
            data = file.read_bytes()
            ranges = self._ranges(len(data))
            if ranges is None:
                chunks, code = [(0, len(data) - 1)], 200
            elif not ranges:
                return self._status(416)
            else:
                chunks, code = ranges, 206
            if len(chunks) == 1:
                a, b = chunks[0]
                payload = data[a : b + 1]
                self.send_response(code)
                self.send_header("Accept-Ranges", "bytes")
                if code == 206:
                    self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
                self.send_header("Content-Type", "image/tiff")
            else:
                parts = [
                    b"--SEP\r\nContent-Type: image/tiff\r\nContent-Range: bytes %d-%d/%d\r\n\r\n" % (a, b, len(data))
                    + data[a : b + 1] + b"\r\n"
                    for a, b in chunks
                ]
                payload = b"".join(parts) + b"--SEP--\r\n"
                self.send_response(206)
                self.send_header("Content-Type", "multipart/byteranges; boundary=SEP")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if fault == "truncate" and body:  # half the body promised, then the connection closes
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return self.connection.shutdown(socket.SHUT_RDWR)
            if body:
                self.wfile.write(payload)
                with state.lock:
                    state.bytes_sent += len(payload)

        def _ranges(self, size: int) -> list[tuple[int, int]] | None:
            header = self.headers.get("Range")
            if not header or not header.startswith("bytes="):
                return None
            out = []
            for part in header[6:].split(","):
                m = _RANGE.fullmatch(part.strip())
                if not m:
                    return []
                first, last = m.groups()
                if first == "":
                    a, b = max(size - int(last), 0), size - 1
                else:
                    a, b = int(first), min(int(last) if last else size - 1, size - 1)
                if a > b or a >= size:
                    return []
                out.append((a, b))
            return out

    return Handler


@contextmanager
def serve_folder(root: Path) -> Iterator[tuple[str, ServerState]]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yields (base URL, state)."""
    state = ServerState(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def write_painted_cog(path: Path, *, height: int = 512, width: int = 512, n_objects: int = 40, seed: int = 1,
                      crs: str = "EPSG:32633", transform=None):  # noqa: ANN001, ANN201
    """A cloud-optimised GeoTIFF (128 px blocks, overviews, uncompressed so that its size is known)
    of painted objects; returns its :class:`~scene_helpers.PaintedScene`."""
    import rasterio
    from scene_helpers import UTM_TRANSFORM, PaintedScene, paint, random_objects

    transform = UTM_TRANSFORM if transform is None else transform
    boxes, labels = random_objects(height, width, n_objects, seed=seed)
    profile = {"driver": "COG", "height": height, "width": width, "count": 3, "dtype": "uint8", "crs": crs,
               "transform": transform, "blocksize": 128, "compress": "NONE"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(paint(height, width, boxes, labels))
    return PaintedScene(path, boxes, labels, transform, crs)


def block_bytes(path: Path, windows: list[tuple[int, int, int, int]] | None = None) -> int:
    """Bytes of the full-resolution TIFF blocks under ``windows`` ((row_off, col_off, height, width),
    scene pixels), each block once, from the file's block index; all blocks when None."""
    import rasterio

    with rasterio.open(path) as ds:
        bh, bw = ds.block_shapes[0]
        rows, cols = -(-ds.height // bh), -(-ds.width // bw)
        if windows is None:
            blocks = {(r, c) for r in range(rows) for c in range(cols)}
        else:
            blocks = {(r, c) for r0, c0, h, w in windows
                      for r in range(r0 // bh, min(rows, -(-(r0 + h) // bh)))
                      for c in range(c0 // bw, min(cols, -(-(c0 + w) // bw)))}
        pixel = ds.interleaving is None or ds.interleaving.name.upper() == "PIXEL"
        return sum(int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=b) or 0)
                   for b in ([1] if pixel else range(1, ds.count + 1)) for r, c in blocks)
