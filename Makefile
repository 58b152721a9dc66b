# wasmhost developer entry points. README.md's quick start uses `make wheel`,
# `make serve` and `make test`; .ci/run calls `make audit`, `make lint`, then `make test`.

VENV      := .venv
PYTHON    ?= python3
CPY_VER   := 0.25.1
MATURIN_VER := 1.16.0
WASMHOST  := target/release/wasmhost
ADDR      ?= 127.0.0.1:8080

.PHONY: serve test build wheel venv guests bench fuzz lint

# Project-local venv with componentize-py (guest builds), pytest (tests),
# maturin (the wheel), Flask (the flask-shop example run natively, tests/sdk)
# and h2 (the HTTP/2 client of tests/test_http2.py).
$(VENV)/.installed: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check componentize-py==$(CPY_VER) pytest kubernetes-validate==1.37.0 \
		maturin==$(MATURIN_VER) flask==3.1.3 h2==4.4.1
	touch $@

venv: $(VENV)/.installed

build:
	cargo build --release --locked

# The wasmhost executable as a wheel in target/wheels/ (pyproject.toml), which
# depends on componentize-py==$(CPY_VER). Uses the same cargo settings as
# `build`, so after it only the wheel is written (a few seconds).
wheel: venv build
	$(VENV)/bin/maturin build --quiet --out target/wheels

# Build the hello example (SDK app) and serve it on $(ADDR).
serve: venv build
	$(WASMHOST) serve examples/hello/app.py --addr $(ADDR)

guests: venv
	$(VENV)/bin/python scripts/build_guest.py --all tests/guests

# Unit tests, then integration tests against the real binary and real guests
# (tests/test_wheel.py installs the wheel into a fresh venv).
test: venv build guests wheel
	cargo test --release --locked --workspace
	WASMHOST_BIN=$(WASMHOST) $(VENV)/bin/python -m pytest tests -q

bench: venv build
	bench/run.sh

# Formatting and lints, as CI runs them (before the tests in .ci/run).
lint:
	cargo fmt --all --check
	cargo clippy --release --locked --workspace --all-targets -- -D warnings

# Supply chain: cargo-deny (RustSec advisories, licences, bans, sources; see
# deny.toml). Installs cargo-deny into target/tools on first use. Offline, the
# advisories are skipped with a loud warning (docs/reliability.md, "Supply chain").
.PHONY: audit
audit:
	scripts/audit.sh

# Fuzz the JSON and validation imports and the config parser, each target
# for FUZZ_SECONDS (default 60); needs nightly and cargo-fuzz. Not part of
# `make test`. See docs/reliability.md, "Fuzzing".
fuzz:
	fuzz/run.sh
