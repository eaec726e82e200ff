# keygate: `make dev` runs the whole API locally; `make test` runs every check CI runs.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum local/moto/requirements.txt | cut -c1-12)

.PHONY: dev test unit e2e lint validate build deploy bench clean

$(STAMP): local/moto/requirements.txt
	@echo "==> installing the local AWS services (moto) and cfn-lint into $(VENV)"
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -r local/moto/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

## dev: local AWS services on :4566 and the API on :3000; emails are printed here
dev: $(STAMP)
	@scripts/dev.sh

## test: format, lint, template checks, unit and end-to-end tests against moto on free ports
test: $(STAMP) lint validate
	@scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

validate: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

## build: release binaries for Lambda (arm64, Graviton), as `sam build` makes them
build:
	cargo lambda build --release --arm64

## deploy: sam build && sam deploy --guided
deploy:
	sam build && sam deploy --guided

## bench: cold start, warm latency, memory vs a Node.js peer, micro-benchmarks, round trips; writes bench/results.md
bench: $(STAMP)
	@scripts/bench.sh

clean:
	cargo clean
	rm -rf $(VENV) .local
