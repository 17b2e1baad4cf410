"""``--http HOST:PORT``: a read-only status page, ``/metrics`` and ``/healthz`` for the line.

The standard library's threading HTTP server: GET only, a fixed set of paths, every answer built
from the runtime's own state (a :class:`StatusBoard`), no files served and nothing that changes
the line. It binds to loopback unless a host is given.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import cv2

from runtime.errors import EdgeFlagError
from runtime.status.board import StatusBoard
from runtime.status.metrics import PROMETHEUS_MISSING, render_metrics

log = logging.getLogger(__name__)


def parse_listen(spec: str) -> tuple[str, int]:
    """``PORT``, ``:PORT`` or ``HOST:PORT`` to (host, port); loopback when no host is given."""
    host, _, port = str(spec).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise EdgeFlagError(f"--http expects PORT or HOST:PORT (e.g. --http 8080, or --http 0.0.0.0:8080 "
                            f"to be reached from the line's network), got {spec!r}")
    return (host.strip("[]") or "127.0.0.1"), number


class StatusServer:
    """Serves ``board`` on ``host:port`` from a daemon thread until ``close``."""

    def __init__(self, board: StatusBoard, host: str = "127.0.0.1", port: int = 8080):
        try:
            import prometheus_client  # noqa: F401 - checked now, not at the first scrape
        except ImportError as exc:
            raise EdgeFlagError(f"{PROMETHEUS_MISSING} (import failed: {exc})") from exc
        handler = type("Handler", (_Handler,), {"board": board, "jpegs": JpegCache()})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise EdgeFlagError(f"--http {host}:{port}: cannot listen ({exc.strerror}). Fix: pick a free "
                                "port, e.g. --http 8081") from exc
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name="status-http")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> StatusServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JpegCache:
    """JPEG bytes of the last few images served, so that a page refresh re-encodes nothing.

    Keyed by the image object itself (the board replaces, never mutates, what it keeps), so a
    new overlay frame or snapshot is encoded once, however many browsers ask for it.
    """

    def __init__(self, keep: int = 16, quality: int = 80):
        self.keep, self.quality = keep, quality
        self._lock = threading.Lock()
        self._items: list[tuple[object, bytes]] = []

    def encode(self, image) -> bytes | None:
        """The image as JPEG (None if OpenCV cannot encode it)."""
        with self._lock:
            for held, data in self._items:
                if held is image:
                    return data
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return None
        with self._lock:
            self._items = [(image, buf.tobytes())] + self._items[: self.keep - 1]
            return self._items[0][1]


class _Handler(BaseHTTPRequestHandler):
    board: StatusBoard
    jpegs: JpegCache
    server_version = "edgeflag-status"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        if path == "/":
            self._send(200, _page(self.board.snapshot()).encode(), "text/html; charset=utf-8")
        elif path == "/status.json":
            self._send(200, json.dumps(self.board.snapshot(), default=str).encode(), "application/json")
        elif path == "/metrics":
            body, kind = render_metrics(self.board)
            self._send(200, body, kind)
        elif path == "/healthz":
            healthy, reasons = self.board.health()
            body = json.dumps({"healthy": healthy, "problems": reasons}).encode()
            self._send(200 if healthy else 503, body, "application/json")
        elif path == "/frame.jpg":
            self._jpeg(self.board.latest_frame())
        elif path.startswith("/snapshot/") and path.endswith(".jpg"):
            self._snapshot(path[len("/snapshot/"):-len(".jpg")])
        else:
            self._send(404, b"not found\n", "text/plain")

    def _snapshot(self, index: str) -> None:
        shots = list(reversed(self.board.snapshots))
        if not index.isdigit() or int(index) >= len(shots):
            self._send(404, b"no such snapshot\n", "text/plain")
            return
        self._jpeg(shots[int(index)][1])

    def _jpeg(self, image) -> None:
        if image is None:
            self._send(404, b"no frame yet\n", "text/plain")
            return
        data = self.jpegs.encode(image)
        self._send(200 if data else 500, data or b"encode failed\n", "image/jpeg" if data else "text/plain")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # A phone that locks its screen mid-transfer is not an error of the line's.
            log.debug("status page: client left before %s was sent", self.path)

    def do_POST(self) -> None:  # noqa: N802 - read-only: nothing on the page changes the line
        self._send(405, b"read-only\n", "text/plain")

    do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

    def log_message(self, fmt: str, *args) -> None:
        log.debug("status page: " + fmt, *args)


def _part_rows(parts: dict | None) -> list[tuple[str, object]]:
    """Line mode's production counters, as rows of the counters table."""
    if not parts:
        return []
    hour = parts["last_hour"]
    since = parts.get("since") or "-"
    if parts.get("restored"):  # an operator comparing with the shift's tally must know a restart happened
        since += f" (restored at start-up, {parts.get('replayed', 0)} part(s) recounted from the event log)"
    return [("parts", parts["parts"]), ("ok / defective", f"{parts['ok']} / {parts['defective']}"),
            ("yield", "-" if parts["yield"] is None else f"{100 * parts['yield']:.2f}%"),
            *((f"defective {k}", v) for k, v in parts["defective_by_class"].items()),
            ("last hour parts / defective", f"{hour['parts']} / {hour['defective']}"),
            ("counting since", since)]


def _page(s: dict) -> str:
    """The phone-sized page: live frame, health, counters, sinks, recent defect snapshots."""
    e = html.escape
    lat = s.get("latency_ms") or {}
    rows = "".join(f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in (
        ("frames", s["frames"]), ("events", s["events"]), ("flagged frames", s["flagged_frames"]),
        ("fps", f"{s['fps']:.1f}" if s["fps"] else "-"),
        ("latency p50 / p95 ms", f"{lat.get('p50', '-')} / {lat.get('p95', '-')}"),
        *_part_rows(s.get("parts")),
        *((f"{k}", v) for k, v in s["events_by_type_and_class"].items()),
        *((f"source {k}", v) for k, v in s["source"].items() if not isinstance(v, dict)),
        *((k, v) for k, v in s["info"].items())))
    sinks = "".join(f"<li>{e(name)}: {e(', '.join(f'{k}={v}' for k, v in st.items()))}</li>"
                    for name, st in s["sinks"].items() if isinstance(st, dict))
    shots = "".join(f'<figure><img src="/snapshot/{i}.jpg" alt="defect"><figcaption>{e(str(d["label"]))} '
                    f'{d.get("peak_score", d.get("score"))} {e(str(d["time"]))}</figcaption></figure>'
                    for i, d in enumerate(s["recent_defects"]))
    health = "healthy" if s["healthy"] else "UNHEALTHY: " + "; ".join(s["problems"])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="refresh" content="2">
<title>edgeflag status</title><style>
body{{font-family:sans-serif;margin:0.5em;max-width:960px}} img{{max-width:100%;height:auto}}
table{{border-collapse:collapse;width:100%}} td{{border-bottom:1px solid #ddd;padding:2px 4px}}
.ok{{color:#060}} .bad{{color:#b00;font-weight:bold}} figure{{display:inline-block;width:45%;margin:2px}}
</style></head><body><h1>edgeflag</h1>
<p id="health" class="{'ok' if s['healthy'] else 'bad'}">{e(health)}</p>
<img id="frame" src="/frame.jpg" alt="latest frame"><table id="counters">{rows}</table>
<h2>Sinks</h2><ul id="sinks">{sinks}</ul><h2>Recent defects</h2><div id="defects">{shots}</div>
</body></html>"""
