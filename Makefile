# The two set-up commands (see README): `make report` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STORE  := reports/sample-store

.PHONY: report test lint deps-test bench mutation clean

# The differential cron tests build a Go oracle around robfig/cron v3.0.1 (the parser
# Kubernetes and Longhorn use) from Debian's packages.
ROBFIG_SRC := /usr/share/gocode/src/github.com/robfig/cron
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The main job on the bundled sample fleet: write it (simulated, fixed seed), collect it
# into a store under reports/, then the weekly report of its last complete week into
# reports/ (HTML, Markdown with its charts, JSON, CSV).
report: $(VENV)/.installed
	mkdir -p reports
	$(BIN)/advisor sample --out reports/sample
	$(BIN)/advisor collect --from-file reports/sample/sample-fleet.json --cluster sample \
	  --store $(STORE)
	$(BIN)/advisor history --store $(STORE) -o json > reports/history.json
	$(BIN)/advisor report --store $(STORE) --out reports
	@echo "wrote the weekly report into reports/ (open the .html file)"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check advisor tests bench notebooks

# What the tests need from Debian, when missing: Go and robfig/cron's source for
# tests/test_cron_differential.py, Prometheus and promtool for tests/test_prometheus.py,
# Chromium for tests/test_report_browser.py (driven over its DevTools protocol: no
# chromedriver, no browser download).
# The prometheus package's postinst starts a system-wide server on port 9090: for the
# install, a policy-rc.d that refuses service starts is put in place when there is none
# (Docker images have one), and on a systemd host the unit is disabled and stopped.
deps-test:
	@if ! command -v go >/dev/null 2>&1 || [ ! -d $(ROBFIG_SRC) ]; then \
	  echo "installing golang-go and golang-github-robfig-cron-dev"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends golang-go golang-github-robfig-cron-dev; \
	fi
	@if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then \
	  echo "installing prometheus (its service is not started)"; \
	  $(SUDO) sh -c 'set -e; policy=/usr/sbin/policy-rc.d; \
	    if [ ! -e $$policy ]; then \
	      trap "rm -f $$policy" EXIT; printf "#!/bin/sh\nexit 101\n" > $$policy; \
	      chmod 755 $$policy; \
	    fi; \
	    apt-get update; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	      prometheus; \
	    if [ -d /run/systemd/system ]; then systemctl disable --now prometheus; fi'; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing chromium (tests/test_report_browser.py opens the HTML report in it)"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends chromium; \
	fi

# Everything the tests need is installed here, so a fresh clone passes as it is.
# Two workers (pytest-xdist), each taking whole files, so a file's module fixtures (the
# sample's report, a Prometheus server) are built once.
# pytest exits 5 when it collected no test: that is a failure, said plainly.
test: lint deps-test
	@$(BIN)/pytest -q -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

# Mutation testing, not part of make test (hours on 2 cores; docs/mutation.md): mutmut
# over the modules named in pyproject.toml's [tool.mutmut] with the tests that guard them,
# then the report's Jinja template (which mutmut cannot mutate) by tests/template_mutants.py.
# Each prints its score and every survivor not listed as equivalent (with why) in
# tests/mutation_equivalents.toml or the template script; either finding one fails.
mutation: $(VENV)/.installed-dev deps-test
	rm -rf mutants
	CRON_DIFF_SCALE=0.3 $(BIN)/mutmut run > mutants.log 2>&1 || { tail -50 mutants.log; exit 1; }
	rc=0; $(BIN)/python tests/mutation_report.py || rc=1; \
	$(BIN)/python tests/template_mutants.py tests/test_report_render.py || rc=1; \
	exit $$rc

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/cron_expand.py
	$(BIN)/python bench/durations.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/fastpath.py
	$(BIN)/python bench/calibration.py
	$(BIN)/python bench/recommend.py
	$(BIN)/python bench/kube_list.py
	$(BIN)/python bench/watch_write.py
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) mutants mutants.log reports/sample reports/sample-store reports/history.json .pytest_cache \
	  .ruff_cache
