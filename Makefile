PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean discord-api

DISCORD_API_SPEC := https://raw.githubusercontent.com/discord/discord-api-spec/main

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@if [ -n "$$DISCORD_TOKEN" ] || grep -Eqs '^(export )?DISCORD_TOKEN=.' .env; then \
		$(BIN)/massage-bot run; \
	else \
		echo "No DISCORD_TOKEN set: starting the terminal console. Set DISCORD_TOKEN (or put it in .env) to run on Discord."; \
		$(BIN)/massage-bot console; \
	fi

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_matcher
	$(BIN)/python -m benchmarks.bench_sessions
	$(BIN)/python -m benchmarks.bench_discord
	$(BIN)/python -m benchmarks.bench_shards
	$(BIN)/python -m benchmarks.bench_classes

discord-api:
	curl -fsSL $(DISCORD_API_SPEC)/specs/openapi.json -o tests/e2e/discord-api/openapi.json
	curl -fsSL $(DISCORD_API_SPEC)/LICENSE -o tests/e2e/discord-api/LICENSE

clean:
	rm -rf $(VENV) build *.egg-info
