# Every target works on a fresh clone with nothing installed: it creates .venv and installs as needed.
VENV ?= .venv
PY := $(VENV)/bin/python
EDGECNN := $(VENV)/bin/edgecnn
# Real MNIST shipped beside the checkout (tests, CI, demo); otherwise the user cache / Keras download is used.
SHARED_MNIST := $(abspath ../shared/data/mnist)
export EDGECNN_DATA_DIR ?= $(if $(wildcard $(SHARED_MNIST)/train-images-idx3-ubyte.gz),$(SHARED_MNIST),)
export TF_CPP_MIN_LOG_LEVEL ?= 3
DEMO_DIR ?= demo

.PHONY: install demo test test-all lint docs docs-serve data bench bench-train bench-peers bench-folder-rss bench-zoo gpu-check gpu-bundle clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	rm -rf $(DEMO_DIR)
	$(EDGECNN) models
	$(EDGECNN) train --model keras-convnet --output $(DEMO_DIR)/run
	$(EDGECNN) export $(DEMO_DIR)/run/model.keras --quantize all --output $(DEMO_DIR)/bundle
	$(EDGECNN) eval $(DEMO_DIR)/bundle/model.int8.onnx --output $(DEMO_DIR)/eval
	$(EDGECNN) predict $(DEMO_DIR)/bundle/model.int8.onnx samples/ --output $(DEMO_DIR)/predict.json
	$(EDGECNN) optimize $(DEMO_DIR)/bundle/model.int8.onnx
	$(EDGECNN) bench $(DEMO_DIR)/bundle/model.onnx $(DEMO_DIR)/bundle/model.int8.onnx $(DEMO_DIR)/bundle/model.int8.cpu.onnx --batch 1,64 --output $(DEMO_DIR)/bench
	$(EDGECNN) bench $(DEMO_DIR)/bundle/model.int8.cpu.onnx --batch 64 --threads 1 --op-profile --output $(DEMO_DIR)/profile
	$(EDGECNN) bench $(DEMO_DIR)/bundle/model.onnx $(DEMO_DIR)/bundle/model.int8.cpu.onnx --batch 1,64 --threads 1,2 --output $(DEMO_DIR)/threads

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ''

lint: install
	$(VENV)/bin/ruff check edgecnn tests benchmarks
	$(VENV)/bin/ruff format --check edgecnn tests benchmarks

# The documentation site (mkdocs.yml): strict, so a broken link or anchor, or a page missing from the nav,
# fails the build. NO_MKDOCS_2_WARNING mutes the Material theme's end-of-life banner, not warnings.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

data: install
	$(EDGECNN) data fetch mnist

bench: bench-train bench-peers

bench-train: install
	$(PY) benchmarks/bench_train.py

bench-peers: install
	$(PY) benchmarks/bench_peers.py

# Peak RSS of training on generated 96x96 PNG folders of 2k and 8k images (streamed vs in-memory arrays).
bench-folder-rss: install
	$(PY) benchmarks/bench_folder_rss.py

# On a CUDA machine or a Jetson: check CUDA/TensorRT end to end on an exported bundle (< 8 min).
# Without a GPU it stops at once with "no CUDA device found (...)" and exit 1, before installing anything.
# The device side only (no TensorFlow/OpenVINO/LiteRT on the GPU box): runtime deps + the bundle that
# `make gpu-bundle` exported on a workstation. On a Jetson (/etc/nv_tegra_release) the venv sees the
# system's NVIDIA onnxruntime-gpu and edgecnn goes in with --no-deps, so pip never swaps in PyPI's CPU wheel.
GPU_VENV ?= .venv-gpu
GPU_PY := $(GPU_VENV)/bin/python
BUNDLE ?= gpu-bundle
JETSON := $(wildcard /etc/nv_tegra_release)
gpu-check:
	@python3 benchmarks/gpu_check.py --preflight
	test -d $(GPU_VENV) || python3 -m venv $(if $(JETSON),--system-site-packages) $(GPU_VENV)
	$(if $(JETSON),$(GPU_PY) -m pip install -q --no-deps -e . && $(GPU_PY) -m pip install -q -r requirements-jetson.txt,$(GPU_PY) -m pip install -q -e .)
	EDGECNN_PYTHON=$(abspath $(GPU_PY)) $(GPU_PY) benchmarks/gpu_check.py --bundle $(BUNDLE) --log gpu-check.log

# On the workstation: the bundles gpu-check reads (FP32/FP16/INT8 and the TensorRT INT8 export).
gpu-bundle: install
	$(EDGECNN) train --model keras-convnet --epochs 1 --output $(BUNDLE)-run --force
	$(EDGECNN) export $(BUNDLE)-run/model.keras --quantize all -o $(BUNDLE) --force
	$(EDGECNN) export $(BUNDLE)-run/model.keras --quantize int8 --target tensorrt -o $(BUNDLE)-trt --force

clean:
	rm -rf $(DEMO_DIR) site build dist *.egg-info .pytest_cache .ruff_cache

# keras.applications (weights=None, usual sizes) + two hand-built nets through export: parity, INT8/FP16,
# input contract, size and latency on this CPU -> results/bench_zoo.{json,md}. Slow (many minutes).
bench-zoo: install
	$(PY) benchmarks/bench_zoo.py
