"""Shared fixtures, one module per stage (see tests/fixtures/)."""

import os

# Keep TensorFlow quiet and deterministic-ish in tests; 2 cores on CI.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

pytest_plugins = [
    "tests.fixtures.train_fixtures",
    "tests.fixtures.export_fixtures",
]
