"""Errors of the training stage. Each says what was expected, what was found and how to fix it."""

from runtime.errors import EdgeFlagError


class TrainError(EdgeFlagError):
    """A training run cannot proceed (bad configuration, missing weights, ...)."""


class DataError(TrainError):
    """The dataset folder cannot be used as given (missing, wrong layout, too few images...)."""


class WeightsError(TrainError):
    """Requested backbone weights cannot be had (offline, wrong file, wrong shape)."""
