# Quick start: `make demo` and `make test` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_MODE := disabled

.PHONY: venv test demo sample-model clean

venv: $(VENV)/.installed

# torch/torchvision first and pinned: an unpinned torch resolves to gigabytes of CUDA wheels
# from the index; 2.14.1 + 0.29.1 install from this machine's local package files.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q -e ".[dev]"
	# An editable install leaves our own modules uncompiled: where PYTHONDONTWRITEBYTECODE is set
	# (this machine, many containers) every `wit` start compiled them again (0.4 s of start-up).
	PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q pipeline transforms filters trainer bench > /dev/null
	touch $@

# One pytest worker per usable core (pytest-xdist), a test file at a time on one worker
# (--dist loadfile): tests/test_guard_mutations.py's module fixture starts the subprocesses of
# every selected guard, so a file split over two workers would run them twice. (xdist_group /
# --dist loadgroup do nothing with pytest 9.2 + xdist 3.8.0: the group suffix is never added.)
test: venv
	$(PY) -m pytest -q -p no:cacheprovider -n auto --dist loadfile

demo: venv
	$(VENV)/bin/wit demo --output demo_output

# Retrain the bundled offline scorer (models/wit-tiny-scorer.pt) from generated scenes.
sample-model: venv
	$(VENV)/bin/wit sample train-scorer --output models

clean:
	rm -rf demo_output .pytest_cache
