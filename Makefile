# One entry point for people and CI. Every target creates the virtualenv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
CONFIG ?= training/configs/default.yaml
export CXR_MODEL_DIR ?= models/cxr-vgg16-3class
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install system-deps serve test check format weights train evaluate export-fast bench clean
.PHONY: soak burst fuzz bench-compare crafted
.PHONY: install-ray score serve-ray bench-batch

$(BIN)/.installed: pyproject.toml
	@PYTHON=$(PYTHON) scripts/system-deps venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	@# -qq: errors only (setuptools prints a generic notice on every editable install)
	$(BIN)/pip install -qq -e '.[dev,train,batch]'
	touch $@

install: $(BIN)/.installed

# Ray (cxr-score --ray, make serve-ray, the Ray tests): an optional extra, only where needed.
$(BIN)/.ray-installed: $(BIN)/.installed
	$(BIN)/pip install -qq -e '.[ray]'
	touch $@

install-ray: $(BIN)/.ray-installed

# Debian/Ubuntu packages the tests use (Orthanc + DICOMweb plugin, Chromium) and python3-venv,
# installed with apt-get (root or sudo) only when missing. DRY_RUN=1: only say what is missing.
system-deps:
	@PYTHON=$(PYTHON) scripts/system-deps $(if $(DRY_RUN),--dry-run) venv test

serve: install
	@if [ ! -f "$(CXR_MODEL_DIR)/metadata.json" ]; then \
	  echo "No model at $(CXR_MODEL_DIR)."; \
	  echo "Get one with:  make weights && make train   (or set CXR_MODEL_DIR to a model folder)"; \
	  exit 1; fi
	$(BIN)/python -m service --host $(HOST) --port $(PORT)  # uvicorn; see service/__main__.py

test: system-deps install install-ray
	$(BIN)/pytest

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service training

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

weights: install
	$(BIN)/python -m training.weights

# bf16 math in oneDNN for the cache and fine-tuning (faster on AVX512_BF16/AMX CPUs, ignored
# elsewhere); evaluation, parity and the gate run in fp32 (training/train.py, BF16_MATH).
TRAIN_FPMATH ?= BF16
train: install
	TF_SET_ONEDNN_FPMATH_MODE=$(TRAIN_FPMATH) $(BIN)/python -m training.train --config $(CONFIG)

evaluate: install
	$(BIN)/python -m training.evaluate $(CXR_MODEL_DIR)

export-fast: install
	$(BIN)/python -m training.fast_export $(CXR_MODEL_DIR)

bench: install
	$(BIN)/python -m bench.run --model-dir $(CXR_MODEL_DIR)

# The service with the default model alone vs with the extra models (CXR_EXTRA_MODEL_DIRS, the
# two binary models) in one run: RSS idle / after load, default /predict p50 at c=1 and the ratio
# (target <= 1.1x). STAND_INS=1: copies of the default model for missing folders.
BENCH_MODELS_REQUESTS ?= 200
bench-models: install
	$(BIN)/python -m bench.models --model-dir $(CXR_MODEL_DIR) \
	  --requests $(BENCH_MODELS_REQUESTS) $(if $(STAND_INS),--stand-ins)

# Variants side by side in one run (gate off, nice 0, the code before hardening):
# /predict p50 at concurrency 1 and RSS, with ratios (bench/compare.py).
COMPARE_ROUNDS ?= 8
bench-compare: install
	$(BIN)/python -m bench.compare --model-dir $(CXR_MODEL_DIR) --rounds $(COMPARE_ROUNDS)

# The crafted hostile files against the real service while /health is probed (bench/crafted.py).
crafted: install
	$(BIN)/python -m bench.crafted

# Mutated real files through the decode worker pool (bench/fuzz.py); findings kept in
# bench/results/tmp/fuzz-crashes. FUZZ_INPUTS=2000 for a quick look.
FUZZ_INPUTS ?= 100000
fuzz: install
	$(BIN)/python -m bench.fuzz --inputs $(FUZZ_INPUTS)

# Long mixed /predict + /explain load on the real service: errors, latency, RSS drift (bench/soak.py).
SOAK_MINUTES ?= 30
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m bench.soak --model-dir $(CXR_MODEL_DIR)

# 200 concurrent uploads: every answer 200 or 503 + Retry-After, and how fast the 503s are.
burst: install
	$(BIN)/python -m bench.burst --model-dir $(CXR_MODEL_DIR)

# Score folders into a CSV (or .parquet) with an HTML report: README "Batch scoring".
SCORE_PATHS  ?= ../shared/data/cxr/images
SCORE_OUT    ?= artifacts/score/results.csv
SCORE_REPORT ?= artifacts/score/report.html
score: install
	$(BIN)/cxr-score $(SCORE_PATHS) --model $(CXR_MODEL_DIR) --out $(SCORE_OUT) --report $(SCORE_REPORT)

# The same app on Ray Serve, REPLICAS replicas (autoscaling up to MAX_REPLICAS) on a local Ray.
REPLICAS     ?= 2
MAX_REPLICAS ?= $(REPLICAS)
serve-ray: install-ray
	$(BIN)/python -m service.ray_serve --host $(HOST) --port $(PORT) \
	  --replicas $(REPLICAS) --max-replicas $(MAX_REPLICAS)

# Batch throughput (images/s): local cxr-score vs Ray Data with 1 and 2 actors: bench/README.md.
bench-batch: install-ray
	$(BIN)/python -m bench.batch --model-dir $(CXR_MODEL_DIR)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
