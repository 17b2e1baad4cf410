# Two commands on a fresh machine with Python 3.11+:  `make demo`  and  `make test`.
# Every target installs what it needs into .venv first (offline except the package registries).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

# Overridable on the command line: make train DATA=path/to/photos NAME=line3
DATA   ?= data/synthetic
NAME   ?= demo
RUN    ?= runs/latest
BUNDLE ?= bundles/latest

.PHONY: setup demo synth train export conveyor bench test test-slow test-arm64 lint clean deploy

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[train,runtime,dev]"
	touch $(STAMP)

# The whole main job on the built-in synthetic dataset, offline.
demo: setup
	$(PY) -m train.synth --out data/synthetic
	$(PY) -m train --data data/synthetic --name demo --config train/configs/demo.toml
	# --keep-going: a rejected artifact is recorded in the bundle; the camera uses a passing one.
	$(PY) -m export --run runs/demo --out bundles/demo --keep-going
	# A moving belt: 60 test-split parts at 640x480, touching or apart, blur and lighting drift.
	$(PY) -m train.conveyor render --run runs/demo --out data/conveyor.mp4 --moving
	rm -f events/demo.jsonl events/demo.counters.json
	# --allow-unfit: the demo runs even if its small model misses the line targets (it then says so).
	# Line mode: the runtime sees each part cross the ROI (the truth file's "roi"), one verdict, one
	# event and one reject pulse per part.
	$(PY) -m runtime.camera --bundle bundles/demo --source data/conveyor.mp4 --headless \
		--events events/demo.jsonl --snapshots events/snapshots --allow-unfit --parts presence \
		--roi 0.35,0.3,0.65,0.7
	$(PY) -m train.conveyor score --truth data/conveyor.json --events events/demo.jsonl

synth: setup
	$(PY) -m train.synth --out data/synthetic

train: setup
	$(PY) -m train --data $(DATA) --name $(NAME)

export: setup
	$(PY) -m export --run $(RUN)

# The latency harness on $(BUNDLE) (built by `make demo` when missing); BENCH_ARGS narrows it, e.g.
# BENCH_ARGS="--quick" or BENCH_ARGS="--artifacts tflite-int8 --threads 1,4". Older studies:
# python -m benchmarks scenario NAME (int8-vs-fp32, loop-overhead, cold-start, footprint, ...).
bench: setup
	test -f $(BUNDLE)/bundle.json || $(MAKE) demo
	$(PY) -m benchmarks run --bundle $(BUNDLE) $(BENCH_ARGS)

test: setup
	$(PY) -m pytest

# Real-data tests (../shared/data: casting photos, pretrained weights); they skip without it.
test-slow: setup
	$(PY) -m pytest -m slow

# The runtime on aarch64 under qemu user-mode (needs debootstrap + qemu-user-static; skips without),
# and the boards' wheels resolved for their Python (Jetson: cp310) against PyPI.
# First run builds the arm64 sysroot into .cache/arm64 (downloads); later runs reuse it.
test-arm64: setup
	$(PY) -m devices.emulate build
	$(PY) -m pytest -m arm64

# The runtime and a bundle onto a board over ssh: make deploy HOST=pi@line3-pi BUNDLE=bundles/latest
# [PROFILE=pi5] [BOARD_PREFIX=/opt/edgeflag] [DEPLOY_ARGS="--ssh-option Port=2222"]
deploy: setup
	$(if $(HOST),,$(error HOST is not set: make deploy HOST=user@board BUNDLE=bundles/<name>))
	$(if $(BUNDLE),,$(error BUNDLE is not set: make deploy HOST=user@board BUNDLE=bundles/<name>))
	$(PY) -m devices deploy --host "$(HOST)" --bundle "$(BUNDLE)" $(if $(PROFILE),--profile "$(PROFILE)") \
	  $(if $(BOARD_PREFIX),--prefix "$(BOARD_PREFIX)") $(DEPLOY_ARGS)

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf runs bundles events results data/conveyor.mp4 data/conveyor.json
