"""Slim on-device runtime: bundle loading, preprocessing, inference backends, camera loop.

Nothing in this package imports TensorFlow (a test proves it), and nothing here imports
``train`` or ``export``: the dependency direction is train -> export -> runtime.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
