"""HTTP webhook: POST each event as JSON (urllib, no extra dependency), retried with backoff."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from runtime import __version__
from runtime.sinks.base import Sink, SinkError, to_json

# Worth retrying: server errors, rate limits, timeouts. A 4xx like 404 or 401 will not fix itself.
_RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the webhook tries before giving up on one event (counted as failed)."""

    tries: int = 4
    timeout: float = 5.0  # per request, seconds
    backoff_initial: float = 0.5
    backoff_max: float = 8.0


class _Permanent(Exception):
    """An HTTP answer that retrying will not change."""


class WebhookSink(Sink):
    """POSTs ``to_json(event)`` with ``Content-Type: application/json``; 2xx is success."""

    remote = True

    def __init__(self, url: str, retry: RetryPolicy | None = None, headers: dict[str, str] | None = None):
        if not url.lower().startswith(("http://", "https://")):
            raise SinkError(f"webhook URL must start with http:// or https://, got {url!r}")
        self.url = url
        self.retry = retry or RetryPolicy()
        self.headers = {"Content-Type": "application/json", "User-Agent": f"edgeflag/{__version__}",
                        **(headers or {})}
        self.name = f"webhook:{url.split('?', 1)[0]}"  # query strings often carry tokens: keep out of logs
        self._interrupted = threading.Event()

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        body = to_json(event).encode("utf-8")
        delay, error = self.retry.backoff_initial, ""
        for attempt in range(1, self.retry.tries + 1):
            try:
                self._post(body)
                return
            except _Permanent as exc:
                raise SinkError(f"{self.name}: {exc} (not retried)") from exc
            except OSError as exc:  # URLError, HTTPError 5xx, timeouts, refused connections
                error = str(getattr(exc, "reason", None) or exc)
            if attempt == self.retry.tries or self._interrupted.wait(delay):
                break
            delay = min(delay * 2, self.retry.backoff_max)
        raise SinkError(f"{self.name}: gave up after {attempt} tr{'y' if attempt == 1 else 'ies'}: {error}")

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.retry.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in _RETRYABLE_STATUS:
                raise
            raise _Permanent(f"HTTP {exc.code} {exc.reason}") from exc

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._interrupted.set()
