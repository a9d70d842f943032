PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-cluster lint typecheck install clean up fuzz bench image helm

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ordersaga demo

up: $(STAMP)
	$(BIN)/ordersaga up --embedded --data-dir data

# Starts Kafka, PostgreSQL, MariaDB and Prometheus when they are not running; stops those it
# started. Two pytest runs (infra/test-suite.sh): the in-process, persistence and deployment
# tests on two workers (TEST_WORKERS), then the real stack, the broker contract on Kafka and
# the benchmark one test at a time; the second runs even when the first fails, and make test
# fails when either does. The three-node cluster kafka3 starts beside the first run, and
# tests/realstack/test_cluster.py stops it after its tests; the test image is built beside
# the first run too.
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	bash infra/with-infra.sh bash infra/test-suite.sh $(BIN)/pytest -q --durations=30

# Only the failover tests on the three-node cluster (a few minutes).
test-cluster: $(STAMP)
	bash infra/with-infra.sh --cluster $(BIN)/pytest -q tests/realstack/test_cluster.py

# The in-process tests only, for the edit-run loop: no Kafka, PostgreSQL or MariaDB needed
# (persistence on SQLite alone, 10 fault-injection seeds, no test marked slow). No lint.
FAST_SEEDS ?= 10

test-fast: $(STAMP)
	ORDERSAGA_FUZZ_SEEDS=$(FAST_SEEDS) $(BIN)/pytest -q --backend sqlite -m "not slow" \
		tests/unit tests/integration tests/api tests/system tests/faults tests/persistence

# The seeded fault-injection suite with more seeds and bigger batches than make test runs:
# make fuzz SEEDS=1000 (seeds 0-999; SEEDS=1000-1999 for a range), ORDERS=10-20 per seed.
SEEDS  ?= 500
ORDERS ?= 10-20

fuzz: $(STAMP)
	ORDERSAGA_FUZZ_SEEDS=$(SEEDS) ORDERSAGA_FUZZ_ORDERS=$(ORDERS) $(BIN)/pytest -q tests/faults/test_seeds.py

# The benchmark: on the real stack the null-chain ceiling, a --max run, a --rate run at half
# the throughput it measured and one at 25 orders/s; then the embedded system at --max. Each
# prints its figures, the targets they meet (docs/performance.md) and where bench.json and
# bench.png are (.cache/bench/<time>/). More options: make bench BENCH_ARGS="--duration 40".
BENCH_ARGS ?=

bench: $(STAMP)
	bash infra/with-infra.sh $(BIN)/ordersaga bench --max --then-half-rate --then-rate 25 \
		--with-baseline $(BENCH_ARGS)
	$(BIN)/ordersaga bench --embedded --max $(BENCH_ARGS)

# The OCI image ordersaga:<version>, from Debian's packages (as root: mmdebstrap, buildah;
# the Debian root filesystem and the wheels are cached under ~/.cache/ordersaga/image/). docs/deploy.md.
# IMAGE_ARCHIVE=path.tar also writes it as an oci-archive.
image:
	PYTHON=$(PYTHON) bash infra/image.sh

# helm, built from the Go module proxy into ~/.cache/ordersaga/helm/ when missing (the chart's tests use it).
helm:
	bash infra/helm.sh version

lint: $(STAMP)
	$(BIN)/ruff check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# Kafka, PostgreSQL, MariaDB and Prometheus on 127.0.0.1, for the distributed mode (see infra/README.md).
INFRA := bash infra/infra.sh

.PHONY: infra-up infra-down infra-status infra-reset infra-up-cluster infra-down-cluster infra-status-cluster

# Needs the command line: Kafka's ACLs are printed by `ordersaga kafka acls`.
infra-up: $(STAMP)
	$(INFRA) up

infra-down:
	$(INFRA) down

infra-status:
	$(INFRA) status

# The three-node Kafka cluster (127.0.0.1:29092,29094,29096; replication factor 3,
# min.insync.replicas 2), beside the single node, which the quick paths keep using.
infra-up-cluster: $(STAMP)
	$(INFRA) up kafka3

infra-down-cluster:
	$(INFRA) down kafka3

infra-status-cluster:
	$(INFRA) status kafka3

# Start from empty: the servers up, the four databases dropped and created again (the
# machine's PostgreSQL cluster included), the saga topics deleted; then the schemas and
# the sample data. Deletes every order, saga, stock row and balance they held.
infra-reset: $(STAMP)
	$(INFRA) up
	$(BIN)/ordersaga db reset --yes
	$(BIN)/ordersaga db upgrade
	$(BIN)/ordersaga seed
