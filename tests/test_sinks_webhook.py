"""The webhook sink against a real local HTTP server and a closed port."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runtime.sinks import SinkDispatcher, SinkError, make_sink
from runtime.sinks.webhook import RetryPolicy, WebhookSink

EVENT = {"type": "defect_start", "time": "2026-03-01T12:00:05.250+00:00", "frame_index": 120,
         "label": "blowhole", "peak_score": 0.875, "frame_count": 3}


@pytest.fixture
def server():
    """A real HTTP server; ``server.answers`` lists the status codes to give, then 200 forever."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": body})
            status = httpd.answers.pop(0) if httpd.answers else 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.answers, httpd.received = [], received
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/line3"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


FAST_RETRY = RetryPolicy(tries=3, timeout=5.0, backoff_initial=0.01, backoff_max=0.02)


def test_webhook_posts_the_event_as_json(server):
    dispatcher = SinkDispatcher([make_sink(server.url)])
    dispatcher.emit(EVENT)
    dispatcher.close()
    assert len(server.received) == 1
    request = server.received[0]
    assert request["path"] == "/hooks/line3" and request["type"] == "application/json"
    body = json.loads(request["body"])
    assert body.pop("id") and body == EVENT  # the dispatcher gives each event its id
    assert next(iter(dispatcher.stats.values()))["delivered"] == 1


def test_webhook_retries_server_errors_then_succeeds(server):
    server.answers = [503, 500]
    WebhookSink(server.url, retry=FAST_RETRY).handle(EVENT, None)
    assert len(server.received) == 3 and all(json.loads(r["body"]) == EVENT for r in server.received)


def test_webhook_does_not_retry_a_client_error(server):
    server.answers = [404]
    with pytest.raises(SinkError, match="HTTP 404.*not retried"):
        WebhookSink(server.url, retry=FAST_RETRY).handle(EVENT, None)
    assert len(server.received) == 1


def test_webhook_gives_up_after_n_tries(server):
    server.answers = [502, 502, 502, 502]
    with pytest.raises(SinkError, match="gave up after 3 tries"):
        WebhookSink(server.url, retry=FAST_RETRY).handle(EVENT, None)
    assert len(server.received) == 3


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens: connections are refused


def test_webhook_to_a_closed_port_does_not_slow_the_loop():
    # The first event's retry waits 60 s after its refused connection, so the sink is busy with it
    # for the whole test: if emit() ever waited on the sink, the 100 emits could not have returned
    # with that first event still unresolved. Structural, not timed: it holds on any CPU and load.
    retry = RetryPolicy(tries=3, timeout=2.0, backoff_initial=60.0, backoff_max=60.0)
    dispatcher = SinkDispatcher([WebhookSink(closed_port_url(), retry=retry)], queue_size=16)
    for i in range(100):
        dispatcher.emit({**EVENT, "frame_index": i})
    during = next(iter(dispatcher.stats.values()))
    dispatcher.close(timeout=0.1)  # interrupts the backoff
    after = next(iter(dispatcher.stats.values()))

    assert during["delivered"] == 0 and during["failed"] == 0  # the first event is still retrying
    assert during["dropped"] >= 100 - 16 - 1  # a full queue drops (counted) instead of blocking
    assert after["delivered"] == 0 and after["failed"] + after["dropped"] == 100  # all accounted for
