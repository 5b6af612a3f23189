# Provisioner: `make demo` runs the main job on embedded defaults; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
REQS := requirements.txt requirements-dev.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha1sum | cut -c1-12)

.PHONY: venv demo test test-rabbitmq lint format run web live worker beat flower migrate bench chaos clean

venv: $(STAMP)

$(STAMP): $(REQS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

demo: venv  ## API, worker, Flower and the ERPNext simulator; provisions a demo workspace
	$(BIN)/python -m provisioner.demo

test: lint  ## lint, then the whole suite (local PostgreSQL and Redis; CI=true makes them mandatory)
	$(BIN)/pytest $(PYTEST_ARGS)

test-rabbitmq: venv  ## the integration suite again, with RabbitMQ as the Celery broker
	CELERY_BROKER_URL=$${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672//} \
	  $(BIN)/pytest tests/integration -m integration $(PYTEST_ARGS)

lint: venv  ## ruff, mypy (strict on steps and engine), the import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

run: venv migrate  ## the Procfile's processes against real PostgreSQL and Redis
	$(BIN)/honcho start

web: venv
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

live: venv  ## the live process: SSE streams of workspace pages on LIVE_PORT (8001)
	$(BIN)/python -m provisioner.live

worker: venv
	$(BIN)/celery -A provisioner worker --loglevel=INFO

beat: venv
	$(BIN)/celery -A provisioner beat --loglevel=INFO

flower: venv  ## Flower on FLOWER_PORT (5555), behind basic auth FLOWER_BASIC_AUTH=user:password
	$(BIN)/celery -A provisioner flower --port=$${FLOWER_PORT:-5555} \
		--basic-auth="$${FLOWER_BASIC_AUTH:?set FLOWER_BASIC_AUTH=user:password}"

migrate: venv
	$(BIN)/flask --app wsgi db upgrade

bench: venv  ## benchmarks on a scratch database (local PostgreSQL and Redis), ~20 min → docs/BENCHMARKS.md
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

chaos: venv  ## reliability at full size (200 tenants per scenario, 100 fuzz cases per operation) → artifacts/chaos
	CHAOS_TENANTS=$${CHAOS_TENANTS:-200} FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} \
	  CHAOS_ENGINE_OUTAGES=$${CHAOS_ENGINE_OUTAGES:-120,600} CHAOS_KILL_SECONDS=$${CHAOS_KILL_SECONDS:-900} \
	  CHAOS_BACKLOG=$${CHAOS_BACKLOG:-1000} \
	  $(BIN)/pytest \
	  tests/chaos tests/fuzz tests/integration/test_steering.py -p no:cacheprovider --timeout 3600 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache artifacts
