# Two commands do everything: `make demo` and `make test` (both as root on Debian 12).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAB := labs/two-dc
PAYMENT_LAB := labs/payment-dr
# python3-venv: Debian's python3 has no `-m venv` without it. openssl: the lab hashes its
# password with `openssl passwd`. chromium + driver: the HTML report's browser test.
# softflowd, nfdump: the lab's flow exporters and drill's collector; gcc + libc6-dev build the
# small libpcap shim softflowd needs on quiet interfaces (docs/flows.md). conntrackd,
# conntrack, dnsmasq-base, postgresql-15, netcat-openbsd: the payment lab's firewalls, DNS,
# database and checks. The rest is what the labs and the probes run.
SYSTEM_PACKAGES := python3-venv openssl frr frr-pythontools openssh-server openssh-client \
	nftables iproute2 iputils-ping traceroute tcpdump procps psmisc util-linux curl \
	chromium chromium-driver fonts-dejavu-core softflowd nfdump gcc libc6-dev \
	conntrackd conntrack dnsmasq-base postgresql-15 netcat-openbsd
REPORTS := reports

.PHONY: setup system-deps venv test lint demo demo-payment lab-up lab-down bench clean

setup: system-deps venv

# Idempotent: installs only what is missing, so a second run costs a dpkg query.
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

# Order-only on system-deps: python3-venv must be there before the venv is made.
$(BIN)/drill: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/drill

test: setup
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check drill tests benchmarks
	$(BIN)/ruff format --check drill tests benchmarks
	$(BIN)/mypy

lab-up: setup
	$(BIN)/drill lab up $(LAB)

lab-down: venv
	$(BIN)/drill lab down $(LAB)

# The main job on the built-in lab: dry-run, a broken drill that rolls back by itself,
# the real switchover and the failback. The lab is taken down whatever happens.
demo: setup
	@set -u; trap '$(BIN)/drill lab down $(LAB)' EXIT; \
	$(BIN)/drill lab up $(LAB) && \
	$(BIN)/drill run runbooks/dc1-to-dc2.yml --dry-run --report-dir $(REPORTS)/dry-run && \
	{ $(BIN)/drill run runbooks/dc1-to-dc2-broken.yml --yes --report-dir $(REPORTS)/broken; \
	  rc=$$?; echo "broken drill exit code: $$rc (1 = failed and rolled back, as expected)"; \
	  [ $$rc -eq 1 ]; } && \
	$(BIN)/drill run runbooks/dc1-to-dc2.yml --yes --report-dir $(REPORTS)/dc1-to-dc2 && \
	$(BIN)/drill run runbooks/dc2-to-dc1.yml --yes --report-dir $(REPORTS)/dc2-to-dc1 && \
	echo && echo "reports:" && ls -1 $(REPORTS)/*/report.json $(REPORTS)/*/report.html

# The payment lab (labs/payment-dr): the switchover, a look at the hidden dependency it leaves
# (a large payment from DR still goes to settlement in DC1), the failback; then the isolation
# rehearsal that names it (exit 1, rolled back) and the fixed switchover with its failback.
demo-payment: setup
	@set -u; trap '$(BIN)/drill lab down $(PAYMENT_LAB)' EXIT; \
	$(BIN)/drill lab up $(PAYMENT_LAB) && \
	$(BIN)/drill run runbooks/payment/dc1-to-dc2.yml --dry-run \
		--report-dir $(REPORTS)/payment-dry-run && \
	$(BIN)/drill run runbooks/payment/dc1-to-dc2.yml --yes \
		--report-dir $(REPORTS)/payment-dc1-to-dc2 && \
	echo "succeeded; yet a payment of 5,000 served by DR still needs DC1:" && \
	$(BIN)/drill lab exec $(PAYMENT_LAB) client -- curl -sS 'http://192.0.2.10/?amount=5000' && \
	$(BIN)/drill run runbooks/payment/dc2-to-dc1.yml --yes \
		--report-dir $(REPORTS)/payment-dc2-to-dc1 && \
	echo "the isolation rehearsal finds it: DC1 cut off for 15 s after the switchover" && \
	{ $(BIN)/drill run runbooks/payment/dc1-to-dc2-isolated.yml --yes \
		--report-dir $(REPORTS)/payment-isolated; rc=$$?; \
	  echo "isolated drill exit code: $$rc (1 = the hidden dependency named, rolled back)"; \
	  [ $$rc -eq 1 ]; } && \
	$(BIN)/drill run runbooks/payment/dc1-to-dc2-fixed.yml --yes \
		--report-dir $(REPORTS)/payment-fixed && \
	$(BIN)/drill run runbooks/payment/dc2-to-dc1.yml --yes \
		--report-dir $(REPORTS)/payment-fixed-failback && \
	echo && echo "reports:" && ls -1 $(REPORTS)/payment-*/report.json

bench: setup
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/lab.py

clean:
	rm -rf $(VENV) $(REPORTS) build *.egg-info
