"""The read-only status page, ``/metrics`` and ``/healthz`` (``--http``)."""
