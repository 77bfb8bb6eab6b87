# make up     start the all-in-one service (API on 127.0.0.1:9876 by default); Ctrl-C stops
# make test   run the whole test suite
# make lint   ruff (lint, imports, complexity) and mypy (strict) over the tree
# Both first install whatever is missing (scripts/bootstrap). Extra arguments go in ARGS:
#   make up ARGS="--config-file ./lbaas.conf"    make test ARGS="-x tests/api"
# The tests run on TEST_WORKERS pytest-xdist workers (most of them wait on processes and
# sleeps, so three keep two cores busy); TEST_WORKERS=0 runs them in this one process.
VENV ?= .venv
ARGS ?=
TEST_WORKERS ?= 3

.PHONY: up test lint

up:
	@VENV=$(VENV) bash scripts/bootstrap
	$(VENV)/bin/lbaas up $(ARGS)

test:
	@VENV=$(VENV) bash scripts/bootstrap --test
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

lint:
	@VENV=$(VENV) bash scripts/bootstrap --test
	$(VENV)/bin/ruff check lbaas tests bench
	$(VENV)/bin/mypy
