# The README's two commands: `make run` and `make test`. Both build .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint serve desk bench-desk demo-drift bench-features bench-train bench-lr bench-tune bench-reasons bench-uplift bench-uplift-banks bench-engine bench-score bench-serve bench-soak bench-reload bench-scale sample clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/churn run

# The scoring API on the champion of `make run` (run that first); writes outputs/secrets.json once.
serve: $(STAMP)
	$(BIN)/churn secrets-init
	$(BIN)/churn serve

# The retention desk on the sample (run `make run` first): prints its URL and a demo login that
# exists for the sample only (a fresh password at every start).
desk: $(STAMP)
	$(BIN)/churn secrets-init
	$(BIN)/churn desk --demo

# A drift scenario end to end in outputs/demo-drift: train on the sample, then score a copy of the
# bank in which a competitor's rate campaign hits one region, and monitor: exits 0 when the
# monitor raised its alert (churn monitor exits 3), 1 if it did not.
DEMO := outputs/demo-drift
demo-drift: $(STAMP)
	rm -rf $(DEMO)
	export CHURN_OUTPUT_DIR=$(DEMO) CHURN_DATABASE_URL=sqlite:///$(DEMO)/churn.db \
		MLFLOW_TRACKING_URI=sqlite:///$(DEMO)/mlflow.db; \
	$(BIN)/churn train > $(DEMO).train.log && $(BIN)/churn promote > /dev/null && \
	$(BIN)/churn generate --out $(DEMO)/bank --scenario rate_campaign --drift-region North && \
	$(BIN)/churn score --data $(DEMO)/bank > /dev/null && \
	{ $(BIN)/churn monitor --data $(DEMO)/bank; test $$? -eq 3; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Tests run in TEST_WORKERS processes (pytest-xdist), a test file to a process, so a module's
# fixtures are built once; TEST_WORKERS=0 runs them in this process, one after another. Each
# process's OpenMP (LightGBM's threads, and the servers and jobs it starts) gets TEST_THREADS:
# two processes of two threads each on two cores took a third longer over the unit and model tests.
# Files go out in collection order (integration, model, unit), not xdist's most-tests-first, which
# left the long files with few tests (MLflow's, PostgreSQL's) for one process at the end.
TEST_WORKERS ?= 2
TEST_THREADS ?= 1
PYTEST := OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint
	$(PYTEST) --durations=25

# The inner loop: lint, unit and model tests (about 2 minutes); `make test` runs everything.
test-fast: lint
	$(PYTEST) tests/unit tests/model -q

bench-features: $(STAMP)
	$(BIN)/python -m benchmarks.features

bench-train: $(STAMP)
	$(BIN)/python -m benchmarks.train

bench-lr: $(STAMP)
	$(BIN)/python -m benchmarks.learning_rate

# Configured vs tuned churn model on a 50k bank and three generated tables (about 20 minutes).
bench-tune: $(STAMP)
	$(BIN)/python -m benchmarks.tune --json benchmarks/.cache/tune.json

# Reasons and churn types against the truth of a fresh 50,000-customer bank (about 4 minutes).
bench-reasons: $(STAMP)
	$(BIN)/python -m benchmarks.reasons

bench-score: $(STAMP)
	$(BIN)/python -m benchmarks.score

# Generates 1M customers x 24 months once (about 10 minutes), then times the local and dask engines.
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale

# Needs wrk (apt-get install wrk).
bench-serve: $(STAMP)
	$(BIN)/python -m benchmarks.serve

# The uplift-ranked list against today's and a random list, by `churn simulate`, on a fresh bank of
# 100,000 customers, the net value also in expectation on 60 more continuations (about 13 minutes
# on 2 cores).
bench-uplift: $(STAMP)
	$(BIN)/python -m benchmarks.uplift

# The same on several fresh banks, side by side: how often each target is met (13 minutes a bank).
UPLIFT_SEEDS ?= 20261213 20261214 20261215
bench-uplift-banks: $(STAMP)
	mkdir -p outputs/bench-uplift
	for s in $(UPLIFT_SEEDS); do $(BIN)/python -m benchmarks.uplift --seed $$s --json outputs/bench-uplift/$$s.json || exit 1; done
	$(BIN)/python -m benchmarks.uplift_banks $(foreach s,$(UPLIFT_SEEDS),outputs/bench-uplift/$(s).json)

# Raw Parquet to features at 100,000 customers: the local engine against a DuckDB query, same run
bench-engine: $(STAMP)
	$(BIN)/python -m benchmarks.engine

bench-desk: $(STAMP)
	$(BIN)/python -m benchmarks.desk

# 10 minutes at 100 requests/s with champion swaps; server memory of the first and last minute.
bench-soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

# How long a reload of 200,000 stored customers holds up the requests beside it (about a minute)
bench-reload: $(STAMP)
	$(BIN)/python -m benchmarks.reload

# Regenerate the committed sample with its fixed seed (the test suite checks it is reproducible).
sample: $(STAMP)
	$(BIN)/churn generate --out data/sample

# Remove what runs and benchmarks wrote (outputs/, the benchmarks' generated banks and bundles in
# benchmarks/.cache/: the next benchmark regenerates them, minutes each); the virtualenv stays.
clean:
	rm -rf outputs benchmarks/.cache .pytest_cache .ruff_cache
