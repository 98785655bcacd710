# The two commands a technician needs: `make run` and `make test`.
#
# The venv is built by an explicit interpreter (PY), never by whatever `python3` comes first in
# PATH (a pyenv under /root would leave the service user with "Permission denied"). Every
# package comes from requirements/*.lock with its hash; the agent itself is installed as a
# wheel, so the venv never runs code from the git tree.
PY ?= /usr/bin/python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=
# The build venv (setuptools + setuptools-scm from requirements/build.lock) and the wheel.
BUILD_VENV := build/venv-build
DIST := dist
AGENT_SRC := $(shell find agent -name '*.py' ! -name _version.py) pyproject.toml

.PHONY: run test bench install wheel devices lock check-lock clean

$(BUILD_VENV)/.stamp: requirements/build.lock
	$(PY) -m venv --clear $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip --disable-pip-version-check -q install --require-hashes --only-binary :all: -r requirements/build.lock
	touch $@

# The version comes from git (setuptools-scm); build/lib is cleared so a deleted module never
# reaches the wheel.
$(DIST)/.stamp: $(BUILD_VENV)/.stamp $(AGENT_SRC)
	rm -rf $(DIST) build/lib build/bdist.*
	$(BUILD_VENV)/bin/python -m pip --disable-pip-version-check -q wheel --no-deps --no-build-isolation -w $(DIST) .
	touch $@

wheel: $(DIST)/.stamp

# Station dependencies only (no pytest, no compiled device bindings: nothing compiles).
$(VENV)/.station: requirements/station.lock $(DIST)/.stamp
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install --require-hashes --only-binary :all: -r requirements/station.lock
	$(PIP) install --no-deps --force-reinstall $(DIST)/loyalty_agent-*.whl
	touch $@

install: $(VENV)/.station

run: install
	$(BIN)/loyalty-agent run

$(VENV)/.dev: $(VENV)/.station requirements/dev.lock
	$(PIP) install --require-hashes --only-binary :all: -r requirements/dev.lock
	touch $@

# pyscard and evdev compile from source (PyPI has no Linux wheels for them): installed only
# when the build tools are here, else the tests that need them are skipped and say why.
devices: $(VENV)/.station
	@missing="$$(sh packaging/build-deps-missing $(BIN)/python)"; \
	if [ -n "$$missing" ]; then \
		echo "pyscard y evdev no se instalan (faltan: $$missing); las pruebas que los usan se omiten."; \
		echo "Para instalarlos: sudo apt-get install gcc python3-dev swig libpcsclite-dev"; \
	elif [ ! -e $(VENV)/.devices ] || [ requirements/devices.lock -nt $(VENV)/.devices ]; then \
		$(PIP) install --require-hashes -r requirements/devices.lock && touch $(VENV)/.devices; \
	fi

test: $(VENV)/.dev devices
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# Refresh the lock files after changing dependencies in pyproject.toml (versions already locked
# stay; `make lock UPGRADE=1` takes the newest allowed): one universal resolution for Linux
# amd64 and arm64 (requirements/all.lock), every other lock cut from it so they agree on every
# version. Needs network access to PyPI.
UPGRADE ?=
LOCK_VENV := build/venv-lock
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command 'make lock'
lock:
	test -x $(LOCK_VENV)/bin/uv || ($(PY) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/python -m pip -q install --require-hashes -r requirements/lock-tools.lock)
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) pyproject.toml --all-extras -o requirements/all.lock
	$(UV_COMPILE) -c requirements/all.lock pyproject.toml -o requirements/station.lock
	$(UV_COMPILE) -c requirements/all.lock pyproject.toml --extra pcsc --extra evdev -o requirements/devices.lock
	$(UV_COMPILE) -c requirements/all.lock pyproject.toml --extra dev --extra bench -o requirements/dev.lock
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) requirements/build.in -o requirements/build.lock
	$(MAKE) check-lock

# Every package of the station lock has a wheel for CPython 3.11 on amd64 and arm64 (resolved
# against PyPI's metadata, nothing installed).
check-lock:
	for arch in x86_64 aarch64; do \
		$(PY) -m pip --disable-pip-version-check -q install --dry-run --ignore-installed --target build/check-lock \
			--only-binary :all: --python-version 3.11 --implementation cp --abi cp311 \
			--platform manylinux_2_36_$$arch --platform manylinux_2_28_$$arch --platform manylinux_2_17_$$arch \
			--platform manylinux2014_$$arch --platform linux_$$arch \
			--require-hashes -r requirements/station.lock || exit 1; \
		echo "station.lock: ruedas para $$arch"; \
	done

clean:
	rm -rf $(VENV) build $(DIST) *.egg-info agent/_version.py
