"""Error types of the export stage; each says what was expected, what was found and the fix."""

from __future__ import annotations

from runtime.errors import EdgeFlagError


class ExportError(EdgeFlagError):
    """Export could not start or could not write a bundle (exit code 2)."""

    exit_code = 2


class RunDirError(ExportError):
    """The run directory is missing, incomplete or inconsistent."""


class OptionError(ExportError):
    """An unknown format, or an option a format does not accept."""


class GateRejectedError(ExportError):
    """The bundle was written, but some artifacts were rejected by the gate or failed to export.

    Exit code 3 (not 2) so that scripts can tell "bundle written, not all artifacts usable"
    from "no bundle at all".
    """

    exit_code = 3

    def __init__(self, bundle: str, problems: list[str]):
        lines = "\n  ".join(problems)
        super().__init__(f"bundle written to {bundle}, but:\n  {lines}\n"
                         "Rejected artifacts stay in bundle.json with status 'rejected' and their numbers; "
                         "failed exports are listed under 'failed_exports'. "
                         "Fix: retrain or recalibrate (e.g. a larger --calibration-size), relax the gate "
                         "(--max-top1-drop, --max-recall-drop, --min-agreement-*), or pass --keep-going "
                         "to accept the bundle with the rejected artifacts marked.")
        self.bundle = bundle
        self.problems = problems

