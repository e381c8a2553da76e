# The two commands of the README: `make repro` runs the pipeline, `make test` runs the tests.
# Both create .venv and install the project into it when missing or out of date.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY ?= true
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install lock repro test test-fast lint format bench scaling repro-times stability cells sweep tune clean-venv

install: $(VENV)/.installed

# The exact versions of requirements.lock (the tested platform), then the project itself; on another
# platform (macOS, aarch64) `make install LOCK=` installs from pyproject.toml's ranges instead.
LOCK ?= requirements.lock
$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(LOCK),$(BIN)/python -m pip install -q -r $(LOCK))
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

lock:  # requirements.lock from a fresh environment installed from pyproject.toml's ranges
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q -e '.[dev]'
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^imdb-rnn'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

repro: install
	dvc repro

# The tests run in TEST_WORKERS processes (pytest-xdist), each test module in one of them, so a module's pipeline
# fixture is built once: most of a slow test is spent waiting on stage processes, servers and browsers.
TEST_WORKERS ?= 3
test: install
	python -m pytest -n $(TEST_WORKERS) --dist loadscope

test-fast: install  # the inner loop: everything but real pipelines, queues, servers, browsers, signals
	python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadscope

lint: install
	ruff check .
	ruff format --check .
	mypy

format: install
	ruff check --fix .
	ruff format .

bench: install
	dvc repro prepare
	python bench/benchmark.py

scaling: install  # stacked_rnn by maxlen (250-2000) and data share, unrolled vs loop on buckets (resumable): reports/scaling.md
	dvc repro prepare
	python bench/scaling.py

repro-times: install  # a forced dvc repro (every stage, as on a fresh clone) timed stage by stage: reports/repro-times.md
	python bench/repro_times.py

stability: install  # every default variant over 5 seeds x 2 numerics settings (hours; resumable): reports/stability.md
	dvc repro prepare
	python bench/stability.py

cells: install  # simple_rnn with SimpleRNN, GRU and LSTM cells, 3 seeds each, test-scored (resumable): reports/cells.md
	dvc repro prepare
	python bench/cells.py

sweep: install  # the lever sweep behind best_rnn (hours on 2 cores): DVC experiments, then reports/sweep.md
	dvc repro prepare
	python bench/sweep.py

tune: install  # an Optuna study over tune.yaml's levers (resumable; --export NAME afterwards): reports/tune.md
	dvc repro prepare
	imdb-rnn tune

clean-venv:
	rm -rf $(VENV)
