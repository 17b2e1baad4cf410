"""Shared fixtures, one module per stage (see tests/fixtures/)."""

import os

# Keep TensorFlow's C++ logging quiet in tests. oneDNN stays as `python -m train` runs it (on, on
# x86-64): with it off here the suite trained other numbers than the CLI (casting on one Xeon: 240/240
# in the slow test, 238/240 from the README's command) and stage 2 took twice as long.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = [
    "tests.fixtures.train_fixtures",
    "tests.fixtures.export_fixtures",
]
