# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# uv installs the locks in seconds where pip takes a minute (most of a fresh clone's `make test`
# before the first test); pip only bootstraps it, pinned like everything else.
UV_VERSION := 0.13.9
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python
# Two locks: requirements.lock is what the bot needs to run (`make demo`);
# requirements-dev.lock adds the test and lint tools (`make test`).
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp
# Chinese labels on charts and in the PDF need a CJK font (matplotlib's DejaVu has none).
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
# tests/e2e/test_webchat_browser.py drives Debian's Chromium through its ChromeDriver.
CHROMEDRIVER := /usr/bin/chromedriver
NGINX := /usr/sbin/nginx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test suite lint typecheck system-packages unit bench-search bench-recommend install clean cjk-font chromium

$(RUNTIME_STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(PIP) uv==$(UV_VERSION)
	$(UV) -r requirements.lock
	$(UV) --no-deps -e .
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.lock
	$(UV) -r requirements-dev.lock
	touch $(DEV_STAMP)

# Silent when the font is there; elsewhere than Debian/Ubuntu, say what to do and carry on.
$(CJK_FONT):
	@if command -v apt-get >/dev/null 2>&1; then \
		echo "Installing the CJK font for charts (fonts-wqy-microhei)"; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=300 install -y -qq fonts-wqy-microhei >/dev/null; \
	else \
		echo "No apt-get: install a CJK font and set SHUXIANG_CJK_FONT to its file for charts"; \
	fi

cjk-font: $(CJK_FONT)

# The same for the browser; without it the browser test skips (fails when
# SHUXIANG_TESTS_REQUIRE_ALL=1, as in .ci/run).
$(CHROMEDRIVER):
	@if command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the web chat page's test (chromium, chromium-driver)"; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "No apt-get: install Chromium and ChromeDriver at /usr/bin/chromium and $(CHROMEDRIVER)"; \
	fi

chromium: $(CHROMEDRIVER)

# What the tests need from Debian (tests/e2e/test_deploy_scripts.py runs deploy/up.sh on nginx),
# in one apt run (one package index update, not one per package); a no-op when all are there.
system-packages:
	@missing=""; \
	[ -e $(CJK_FONT) ] || missing="$$missing fonts-wqy-microhei"; \
	[ -e $(CHROMEDRIVER) ] || missing="$$missing chromium chromium-driver"; \
	[ -x $(NGINX) ] || missing="$$missing nginx"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
		echo "Installing for the tests (charts' CJK font, the browser test's Chromium, nginx):$$missing"; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=300 install -y -qq $$missing >/dev/null; \
	else \
		echo "No apt-get: install$$missing (or set SHUXIANG_CJK_FONT; Chromium and ChromeDriver at /usr/bin)"; \
	fi

install: $(DEV_STAMP) system-packages

demo: $(RUNTIME_STAMP) cjk-font
	$(BIN)/shuxiang demo

# lint-imports: the layer table of ARCHITECTURE.md (contracts in pyproject's [tool.importlinter]).
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy bot handlers services storage nlp sandbox tests

# lint and typecheck run beside the tests (make -j): pytest leaves part of the two cores idle while
# its end-to-end tests wait on sockets and processes. Output is kept whole line by line.
# The venv (downloads) and Debian's packages (apt) are set up side by side on a fresh machine.
test:
	@$(MAKE) --no-print-directory -j 2 $(DEV_STAMP) system-packages
	@$(MAKE) --no-print-directory -j 3 --output-sync=line lint typecheck suite

# Four workers on two cores: the e2e tests wait on sockets and processes while the others use the
# CPU. Tests go out two at a time in the order tests/conftest.py sets (the slow ones first, the
# waiting ones spread out), so no worker is left alone with a run of waits at the end.
# Our modules are compiled once first: otherwise each worker and each process the tests start
# compiles them again on a fresh clone. PYTHONDONTWRITEBYTECODE (set on our CI machines) is cleared
# for the same reason: with it no .pyc is written, and every process the tests start compiled each
# library it imports again (a sixth of the suite's CPU), as pytest did its rewritten test modules.
suite: export PYTHONDONTWRITEBYTECODE :=
suite: $(DEV_STAMP) system-packages
	$(BIN)/python -m compileall -q -j 0 bot handlers services storage nlp sandbox tests
	$(BIN)/pytest -q -rs -n 4 --maxschedchunk 2 --durations=15

bench-search: $(DEV_STAMP)
	$(BIN)/python benchmarks/search.py

bench-recommend: $(DEV_STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -W ignore benchmarks/recommend.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
