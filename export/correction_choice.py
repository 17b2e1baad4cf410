"""``bias_correction = "auto"``: build an int8 format both ways and keep the one validation prefers.

Bias correction (:mod:`export.bias_correction`) cancels the mean shift that rounding weights to int8
gives each channel. Whether that helps a given model is not known in advance: measured on the same
kind of run, it turned the hard steel variant's rejected int8 TFLite artifact (65/66 on test) into a
pass (66/66, hold-out flips 16 -> 7), and one neu_det model's pass (270/270) into a rejection
(267/270). So with ``"auto"`` (the default) each int8 format is built from the model as trained and
from the corrected copy, both are judged on the validation split against the reference (the export
gate's own verdict, then the mean largest class-probability change, :func:`export.int8_fallback.
output_error`), and the corrected build is kept only where validation clearly prefers it (:func:`chosen`).
The gate then judges the kept artifact on the test split, which took no part in the choice. Both
verdicts are in the bundle.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from export.int8_fallback import MIN_ERROR_CUT, choices_made, prefers, validation_judge

AS_TRAINED, CORRECTED = "as trained", "bias-corrected"

# A candidate: writes its artifact to the path given and returns what it records (its quantization).
Build = Callable[[Path], dict]


def candidates_for(mode: str, as_trained: Build, corrected: Build) -> dict[str, Build]:
    """The builds ``mode`` (``"on"``, ``"off"``, ``"auto"``) asks for, as trained first."""
    out = {AS_TRAINED: as_trained, CORRECTED: corrected}
    if mode == "auto":
        return out
    return {CORRECTED: corrected} if mode == "on" else {AS_TRAINED: as_trained}


def build_best(job, fmt: str, builds: dict[str, Build]) -> dict:
    """Build each candidate; keep the one validation prefers at ``job.dest``; return its record.

    One candidate is built straight to ``job.dest``. With two, each is built in the export's work
    folder and judged (:func:`export.int8_fallback.validation_judge`, ``fmt`` "tflite" or "onnx");
    the record gains ``bias_correction_choice``: the rule, the choice and each candidate's verdict.
    """
    if len(builds) == 1:
        return next(iter(builds.values()))(job.dest)
    judge = validation_judge(str(job.ctx.validation_file()), job.ctx.config.gate, fmt)
    tried = []
    for name, build in builds.items():
        path = job.ctx.workdir / f"{job.spec.name}.{name.replace(' ', '_')}{job.dest.suffix}"
        record = build(path)
        tried.append((name, path, record, judge(path.read_bytes())))
    verdicts = {t[0]: t[3] for t in tried}
    name = chosen(verdicts[AS_TRAINED], verdicts[CORRECTED])
    _, path, record, _ = next(t for t in tried if t[0] == name)
    shutil.move(str(path), job.dest)
    for other in tried:
        other[1].unlink(missing_ok=True)
    choice = {"mode": "auto", "chosen": name, "validation": verdicts,
              "rule": f"passes the gate on validation; if both or neither, corrected only when it cuts "
                      f"the output error by {MIN_ERROR_CUT:.0%}"}
    return {**record, "bias_correction_choice": choice}


def chosen(as_trained: dict, corrected: dict) -> str:
    """Which build to keep, from their validation verdicts (:func:`export.int8_fallback.validation_judge`).

    The one the gate passes there; when it passes both or neither, the corrected build only if it cuts
    the output error by :data:`export.int8_fallback.MIN_ERROR_CUT` (the float-op search's own rule for
    buying a change with validation evidence). Smaller differences are noise on a small split: on the
    tiny test run the corrected ONNX int8 build was 9% lower on validation (210/210 both) and flipped
    one more test image; on the hard variant's TFLite int8 the build as trained was 16% lower on
    validation and the corrected one was better on test and the hold-out.
    """
    return CORRECTED if prefers(as_trained, corrected) else AS_TRAINED


def choice_notes(artifacts: list[dict]) -> list[str]:
    """One line per artifact for which ``"auto"`` chose between the two builds: what each gave, the choice."""
    return [f"{name} was built as trained and bias-corrected and keeps the {choice['chosen']} build, judged "
            f"on the validation split ({said}). To force one: --option {name}.bias_correction=off (or =on)"
            for name, choice, said in choices_made(artifacts, "bias_correction_choice")]
