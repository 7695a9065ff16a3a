# make run   : set up .venv if needed, then open the studio on the built-in tiny model
# make test  : set up .venv if needed, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.studio-installed
# Where no NVIDIA GPU is present, the CPU wheel of torch is installed first so pip never pulls
# a multi-GB CUDA build. TORCH_CPU_FALLBACK is tried when the CPU index cannot be reached.
TORCH_CPU_INDEX    ?= https://download.pytorch.org/whl/cpu
TORCH_CPU_FALLBACK ?= torch==2.13.0
PORT   ?= 7860
ARGS   ?=

.PHONY: run test lint setup clean bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "torch already present: $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install -q torch numpy; \
	else \
		echo "No NVIDIA GPU found: installing the CPU build of torch"; \
		$(PY) -m pip install -q --retries 0 --timeout 15 --index-url $(TORCH_CPU_INDEX) torch numpy 2>/dev/null \
			|| $(PY) -m pip install -q "$(TORCH_CPU_FALLBACK)" numpy; \
	fi
	@# Keep the torch just installed: constrain it so no dependency swaps it for another build.
	@$(PY) -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-constraint.txt
	@$(PY) -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)
	$(PY) launch.py --port $(PORT) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check studio tests bench launch.py

bench: $(STAMP)
	$(PY) bench/tiny_sft.py

clean:
	rm -rf $(VENV) .pytest_cache
