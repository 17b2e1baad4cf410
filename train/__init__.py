"""Training stage: from a class-per-folder tree of photos to a fine-tuned MobileNet run directory.

``python -m train --data DIR`` (see :mod:`train.__main__`) or ``train.pipeline.train(TrainConfig(...))``.
``python -m train.synth`` generates the built-in factory-line dataset.

Importing this package (and :mod:`train.synth`) never imports TensorFlow: the synthetic data
generator is also used by tests and by the runtime demo, which must stay light.
"""

__all__: list[str] = []
