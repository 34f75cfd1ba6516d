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

.PHONY: demo test lint bench bench-quick clean-env

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/corpuskit fetch $(CORPUS)
	$(BIN)/corpuskit build $(CORPUS) --tokenizer spm-bpe:4096
	$(BIN)/corpuskit train $(CORPUS) --model gpt --preset tiny --max-steps $(DEMO_STEPS)
	$(BIN)/corpuskit sample latest --prompt "def " --max-new-tokens 120

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check corpuskit tests benchmarks

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run

bench-quick: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run --quick

clean-env:
	rm -rf $(VENV)
