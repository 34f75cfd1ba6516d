# Two entry points on a fresh machine: `make demo` (the main job, offline) and `make test`.
# Each creates the virtual environment it needs in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned so results are reproducible. pip picks the build that fits this machine: the CPU wheel
# where one is provided locally, the CUDA build from PyPI on Linux, the MPS build on macOS.
# Override for another build, e.g. `make demo TORCH_SPEC="torch --index-url <your index>"`.
TORCH_SPEC ?= torch==2.13.0
CORPUS ?= python-stdlib
DEMO_STEPS ?= 300

.PHONY: demo test lint bench bench-quick clean-env browser

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[train,dev,hf,fast]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/corpuskit fetch $(CORPUS)
	$(BIN)/corpuskit build $(CORPUS) --tokenizer spm-bpe:4096
	$(BIN)/corpuskit train $(CORPUS) --model gpt --preset tiny --max-steps $(DEMO_STEPS)
	$(BIN)/corpuskit sample latest --prompt "def " --max-new-tokens 120

test: $(BIN)/.installed browser
	$(BIN)/python -m pytest -q

# The report's browser test drives the system Chromium (never a downloaded one). Install it from
# the Debian packages when it is missing and we are root with apt-get; otherwise say so, and
# that test skips with the reason. Never fails the build: the rest of the suite does not need it.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium with apt-get (for the report's browser test)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: the browser test will skip"; \
	else \
		echo "chromium not found (install it as root: apt-get install chromium):" \
			"the browser test will skip"; \
	fi

lint: $(BIN)/.installed
	$(BIN)/ruff check corpuskit tests benchmarks

# The contenders (datatrove, datasketch, rensa) come from the `bench` extra, installed on demand.
$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[train,dev,bench,fast]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python -m benchmarks.run --markdown benchmarks/results/latest.md

bench-quick: $(BIN)/.bench-installed
	$(BIN)/python -m benchmarks.run --quick --markdown benchmarks/results/latest-quick.md

clean-env:
	rm -rf $(VENV)
