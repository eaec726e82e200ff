# keygate: `make dev` runs the whole API locally; `make test` runs every check CI runs.
SHELL := /bin/bash
VENV := .venv
REQUIREMENTS := local/moto/requirements.txt local/fuzz/requirements.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-12)
# How long `make fuzz` runs schemathesis; `make test` gives it 3 minutes.
FUZZ_MINUTES ?= 30
# The architecture `make package` builds for (template.yaml's Architecture parameter): arm64 or x86_64.
ARCH ?= arm64

.PHONY: dev test unit e2e lint validate deploy bench fuzz package clean

$(STAMP): $(REQUIREMENTS)
	@echo "==> installing the local AWS services (moto), cfn-lint and schemathesis into $(VENV)"
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check $(addprefix -r ,$(REQUIREMENTS))
	@rm -f $(VENV)/.installed-* && touch $@

## dev: local AWS services on :4566 and the API on :3000; emails are printed here
dev: $(STAMP)
	@scripts/dev.sh

## test: format, lint, template checks, unit and end-to-end tests against moto on free ports, then 3 minutes of
## schemathesis against the local API
test: $(STAMP) lint validate
	@scripts/test.sh

## fuzz: schemathesis against the local API for FUZZ_MINUTES (default 30), every check; see local/fuzz/
fuzz: $(STAMP)
	@FUZZ_MINUTES=$(FUZZ_MINUTES) scripts/fuzz.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

validate: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

## package: sam validate --lint, then sam build of every function, as a user deploys (ARCH=arm64|x86_64; about an
## hour on 2 cores); the pinned aws-sam-cli and cargo-lambda go into .venv-package
package:
	@ARCH=$(ARCH) scripts/package.sh

## deploy: make package, then sam deploy --guided with the same Architecture
deploy: package
	.venv-package/bin/sam deploy --guided --parameter-overrides Architecture=$(ARCH)

## bench: cold start, warm latency, memory vs a Node.js peer, micro-benchmarks, round trips; writes bench/results.md
bench: $(STAMP)
	@scripts/bench.sh

clean:
	cargo clean
	rm -rf $(VENV) .venv-package .local .aws-sam
