"""Every artifact of a bundle on fixed inputs: ``python -m devices.emulate.probe BUNDLE INPUTS.npy OUT.npz``.

Run by the same code on x86 and under qemu on aarch64, so the arm64 test compares like with like.
An artifact no installed engine can open is left out of OUT (the test then says which).
"""

from __future__ import annotations

import sys

import numpy as np

from runtime.bundle import Bundle


def probe(bundle_dir: str, inputs: str, out: str) -> None:
    """Write ``{artifact name: probabilities}`` for the uint8 images in ``inputs``."""
    bundle, images = Bundle.load(bundle_dir), np.load(inputs)
    results = {}
    for artifact in bundle.artifacts:
        if not (bundle.root / artifact.file).is_file():
            continue  # recorded but not written (a failed export kept by --keep-going)
        with bundle.open(artifact, threads=1) as engine:
            results[artifact.name] = np.stack([engine.run_one(x) for x in images])
    np.savez(out, **results)


if __name__ == "__main__":
    probe(*sys.argv[1:4])
