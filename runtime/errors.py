"""Error types of the runtime. Each message says what was expected, what was found and the fix."""


class EdgeFlagError(Exception):
    """Base class: an error a user can act on (entry points print it without a traceback)."""


class ImageReadError(EdgeFlagError):
    """An image file could not be decoded into pixels (empty, truncated, not an image...)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class BundleError(EdgeFlagError):
    """A bundle is missing, incomplete, tampered with or has no usable artifact."""


class BackendError(EdgeFlagError):
    """An inference engine is missing or cannot run an artifact."""
