# Two commands on a fresh machine: `make run` (every notebook, headless, offline) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
PYPROJECT_HASH := $(shell sha256sum pyproject.toml 2>/dev/null | cut -c1-16)
EDITABLE := $(VENV)/.editable-$(PYPROJECT_HASH)
# Optional extras, each a lock installed on top of the run time (tools/lock.py): train (torch, for
# `masks train` and `make models`), pose (mediapipe), test (pytest, moto, playwright; needs both).
EXTRA_STAMP = $(VENV)/.extra-$(1)-$(shell sha256sum requirements-$(1).lock | cut -c1-16)
CATALOG := data/sample/manifest.csv
# The installer: uv (pinned, put into .venv by pip first) installs the locked wheels about ten times
# faster than pip (the run time: 7 s with nothing in uv's cache, 83 s for pip with a warm cache). Same
# locks, same packages; `make INSTALLER=pip run` uses pip alone. Local wheel folders named in PIP_FIND_LINKS (a CPU
# build of torch, say) are passed on to uv, which does not read pip's configuration.
INSTALLER ?= uv
UV_VERSION := 0.13.9
ifeq ($(INSTALLER),uv)
INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python $(foreach d,$(PIP_FIND_LINKS),--find-links $(d))
BOOTSTRAP = test -x $(BIN)/uv || $(BIN)/pip install --quiet uv==$(UV_VERSION)
else
INSTALL = $(BIN)/pip install --quiet --no-compile
BOOTSTRAP = @true
endif
# `make lab PORT=8890` picks the port; as root (the usual case in containers) lab gets --allow-root.
PORT ?= 8888

# Project-local Jupyter/IPython/matplotlib state: nothing depends on $HOME.
export JUPYTER_CONFIG_DIR := $(CURDIR)/.jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/.jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter/runtime
export IPYTHONDIR := $(CURDIR)/.jupyter/ipython
export MPLCONFIGDIR := $(CURDIR)/.jupyter/matplotlib
export PIP_DISABLE_PIP_VERSION_CHECK := 1
unexport MPLBACKEND
# Python writes .pyc files into .venv for the modules it imports (the install compiles none, see below).
# With PYTHONDONTWRITEBYTECODE set (some containers and CI images set it), every process compiled
# pandas, matplotlib and chromadb from source again: 5.1 s instead of 1.9 s per notebook kernel.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install install-train install-pose install-test models run test lab bench sample clean reset lock workshop strip git-filter

install: $(EDITABLE)

# The run time: exactly what `make run` executes (no torch, mediapipe or test tools). No compiling at
# install (uv never does; pip gets --no-compile): Python writes .pyc files for the modules it imports,
# instead of every module of every package (264 MB of .pyc, kubernetes' client alone 70 MB).
# The stamp is keyed on the lock file's hash: a changed lock rebuilds .venv, an unchanged one is a no-op.
$(STAMP): requirements.lock
	@echo "== creating $(VENV) from requirements.lock (lock $(LOCK_HASH)) =="
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BOOTSTRAP)
	$(INSTALL) -r requirements.lock
	touch $(STAMP)

# An extra on top of the run time, keyed on its lock's hash (a rebuilt .venv loses every extra stamp).
# torch goes first, on its own, so a local CPU build (PIP_FIND_LINKS) is taken when there is one.
$(VENV)/.extra-train-%: requirements-train.lock | $(EDITABLE)
	rm -f $(VENV)/.extra-train-*
	$(BOOTSTRAP)
	$(INSTALL) torch==2.13.0
	$(INSTALL) -r requirements-train.lock
	touch $@
$(VENV)/.extra-pose-%: requirements-pose.lock | $(EDITABLE)
	rm -f $(VENV)/.extra-pose-*
	$(BOOTSTRAP)
	$(INSTALL) -r requirements-pose.lock
	@# mediapipe's opencv-contrib-python and the run time's headless build share site-packages/cv2
	$(BIN)/python -c "import cv2, numpy; cv2.GaussianBlur(numpy.eye(8, dtype='float32'), (3, 3), 0); print('cv2', cv2.__version__, 'works')"
	touch $@
$(VENV)/.extra-test-%: requirements-test.lock | $(EDITABLE) $(call EXTRA_STAMP,train) $(call EXTRA_STAMP,pose)
	rm -f $(VENV)/.extra-test-*
	$(BOOTSTRAP)
	$(INSTALL) -r requirements-test.lock
	touch $@

install-train: $(EDITABLE) $(call EXTRA_STAMP,train)
install-pose: $(EDITABLE) $(call EXTRA_STAMP,pose)
install-test: install-train install-pose $(call EXTRA_STAMP,test)

# The `helpers` package itself, installed editable (`pip install -e .`, pyproject.toml's build-system):
# keyed on pyproject.toml's hash, so an existing .venv gets it without being rebuilt. (Older .venvs
# had a workbook.pth file instead; it is removed.)
$(EDITABLE): $(STAMP) pyproject.toml
	rm -f $(VENV)/lib/python*/site-packages/workbook.pth
	$(BOOTSTRAP)
	$(INSTALL) --no-deps -e .
	$(MAKE) --no-print-directory git-filter
	touch $(EDITABLE)

# The nbstripout git filter named in .gitattributes: outputs that JupyterLab autosaves (the search app
# in 07_search) are stripped when git reads the notebook, so the working tree stays clean. Git config is
# per clone, so a fresh clone gets it from `make install`; outside a git checkout this does nothing.
# helpers.workbook.launch runs nbstripout in 0.3 s instead of 2.2 s (see its docstring).
git-filter:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  $(BIN)/nbstripout --install --attributes .gitattributes && \
	  git config filter.nbstripout.clean "'$(abspath $(BIN))/python' -m helpers.workbook.launch nbstripout --keep-id" && \
	  echo "nbstripout git filter installed (keeps cell ids)"; fi

$(CATALOG): | $(EDITABLE)
	$(BIN)/python -m helpers sample --out data/sample

sample: $(CATALOG)

run: $(EDITABLE) $(CATALOG)
	$(BIN)/python -m helpers notebooks run

test: install-test
	@# both cores (pytest-xdist); a test file stays on one worker, so its module fixtures are built once
	@# (4 min 4 s against 4 min 20 s); the slowest files go first (tests/conftest.py SLOW_FILES_FIRST)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# Export both networks to the committed ONNX files + manifest (helpers.modelbuild; needs torch).
models: install-train $(CATALOG)
	$(BIN)/python -m helpers models build

lab: $(EDITABLE) $(CATALOG)
	mkdir -p .jupyter/config/lab/user-settings/@jupyterlab/apputils-extension
	echo '{"fetchNews": "false", "checkForUpdates": false}' > .jupyter/config/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings
	$(BIN)/python -m helpers.workbook.launch jupyterlab --ServerApp.root_dir=$(CURDIR)/notebooks --LabApp.news_url=None \
	  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate --ServerApp.port=$(PORT) \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

# The benchmarks also time eager torch against the ONNX files: they need the train extra.
bench: install-train $(CATALOG)
	$(BIN)/python -m helpers bench $(BENCH_ARGS)

workshop: $(EDITABLE)
	$(BIN)/python -m helpers workshop build

# Between workshop groups: drop the index and caches, keep the catalogue and the environment.
reset:
	rm -rf .cache workshop
	@echo "index and caches removed; the catalogue in data/ is kept. 'make run' rebuilds them."

clean: reset
	rm -rf runs .jupyter .pytest_cache data/sample
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

# Regenerate every lock (run time + one per extra) in a scratch venv after changing a requirements*.in.
lock:
	$(PYTHON) tools/lock.py

# Clear outputs and execution counts from the committed notebooks (also a pre-commit hook).
strip: $(EDITABLE)
	$(BIN)/python -m helpers.workbook.launch nbstripout --keep-id notebooks/*.ipynb
