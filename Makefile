# homelab.k8s_ha: everything a developer, CI and the README need.
#   make demo     install, build and start the local control plane, load the two-node
#                 fixture, run the Phase 0 read-only verification and print its report
#   make test     unit tests, ansible-test sanity, ansible-lint, integration and Molecule
# See docs/testing.md.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(abspath .)
VENV        := $(ROOT)/.venv
PY          := $(VENV)/bin/python
BIN         := $(VENV)/bin
LOCAL       := $(ROOT)/.local
# A collections tree whose homelab/k8s_ha is this checkout (a symlink), for running.
COLL_RUN    := $(LOCAL)/collections
# A copy of the checkout for ansible-test, which wants a real ansible_collections tree.
COLL_TEST   := $(LOCAL)/ansible-test/ansible_collections
SITE        := $(VENV)/lib/python3.11/site-packages
FIXTURE     ?= two-node
CLUSTER     := $(PY) tests/cluster/localcluster.py
KUBECONFIG_LOCAL := $(LOCAL)/cluster/kubeconfig

export ANSIBLE_COLLECTIONS_PATH := $(COLL_RUN)
export ANSIBLE_CALLBACK_RESULT_FORMAT := yaml
export ANSIBLE_LOCALHOST_WARNING := false
export ANSIBLE_INVENTORY_UNPARSED_WARNING := false
export PATH := $(BIN):$(PATH)

.PHONY: help venv collection build cluster-up cluster-down demo test unit sanity lint \
        integration molecule collection-build docs ee-context clean

help:
	@sed -n '2,5p' Makefile | sed 's/^# \{0,1\}//'
	@echo "other targets: venv build cluster-up FIXTURE=two-node|three-worker|none cluster-down"
	@echo "               unit sanity lint integration molecule collection-build docs ee-context clean"

# --- Python environment (versions pinned in requirements.txt only) ---------------------
# pip installs uv (its pin is in requirements.txt too), and uv the rest: about 25 s against
# pip's 60 s on two cores, bytecode compiled as pip does. Where uv cannot reach the index
# (its own TLS roots, no pip.conf), pip installs everything, as before.
$(VENV)/.installed: requirements.txt
	@echo "== creating $(VENV) from requirements.txt"
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$$(grep -E '^uv==' requirements.txt)"
	$(BIN)/uv pip install --quiet --python $(PY) --compile-bytecode -r requirements.txt \
	  || { echo "== uv failed; installing with pip"; \
	       $(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt; }
	@touch $@

venv: $(VENV)/.installed

# The link is made only where it is missing or wrong: make test's stages run side by side,
# and relinking would leave a moment without it for the other's playbooks.
collection: venv
	@mkdir -p $(COLL_RUN)/ansible_collections/homelab
	@[ "$$(readlink $(COLL_RUN)/ansible_collections/homelab/k8s_ha)" = "$(ROOT)" ] \
	  || ln -sfn $(ROOT) $(COLL_RUN)/ansible_collections/homelab/k8s_ha

# --- local control plane ----------------------------------------------------------------
build:
	bash tests/cluster/build.sh >/dev/null

cluster-up: collection build
	$(CLUSTER) up --fixture $(FIXTURE)

cluster-down: venv
	$(CLUSTER) down
	@for d in $(LOCAL)/cluster-gw* $(LOCAL)/cluster-molecule; do if [ -d "$$d" ]; then $(CLUSTER) --dir "$$d" down; fi; done

# --- the README's main command ----------------------------------------------------------
demo: collection build
	@if $(CLUSTER) status >/dev/null 2>&1; then $(CLUSTER) load-fixture two-node; \
	 else $(CLUSTER) up --fixture two-node; fi
	$(BIN)/ansible-playbook -i inventories/local playbooks/phase0_verify.yml
	@echo
	@echo "The cluster is still running: KUBECONFIG=$(KUBECONFIG_LOCAL) kubectl get nodes"
	@echo "Next, plan Phase 0 (reads only; prints the plan and its id):"
	@echo "  source .venv/bin/activate"
	@echo "  ansible-playbook -i inventories/local playbooks/phase0_guardrails.yml --check --diff"
	@echo "Stop the cluster with: make cluster-down"

# --- tests -----------------------------------------------------------------------------
# The unit tests first (seconds), then the integration stage (two workers, each with its
# control plane) with sanity, lint and Molecule beside it: the integration stage leaves part
# of the two cores idle while it waits on its control planes, and the three fit in that
# time. Their output goes to .local/beside.log and is printed after the integration stage;
# Molecule's control plane is .local/cluster-molecule, apart from the workers'. Each stage
# alone: make unit, make sanity, make lint, make integration, make molecule.
test: unit build
	@echo "== sanity, lint and Molecule run beside the integration stage (output: $(LOCAL)/beside.log)"
	@rm -f $(LOCAL)/beside.rc; \
	 ( HOMELAB_CLUSTER_DIR=$(LOCAL)/cluster-molecule $(MAKE) --no-print-directory sanity lint molecule \
	     > $(LOCAL)/beside.log 2>&1; echo $$? > $(LOCAL)/beside.rc ) & \
	 beside=$$!; rc=0; \
	 $(MAKE) --no-print-directory integration || rc=$$?; \
	 wait $$beside || true; \
	 echo "== sanity, lint and Molecule (beside the integration stage):"; cat $(LOCAL)/beside.log; \
	 brc=$$(cat $(LOCAL)/beside.rc 2>/dev/null || echo 1); \
	 if [ $$rc -ne 0 ] || [ $$brc -ne 0 ]; then \
	   echo "make test: failed (integration exit $$rc; sanity, lint and Molecule exit $$brc)"; exit 1; fi
	@echo "make test: all stages passed"

unit: collection
	$(PY) -m pytest -q tests/unit

sanity: collection
	bash tests/sanity/run.sh

lint: collection
	$(BIN)/ansible-lint

# Two pytest-xdist workers, each with a control plane of its own (tests/integration/conftest.py).
INTEGRATION_WORKERS ?= 2
integration: collection build
	$(PY) -m pytest -q --durations=15 -n $(INTEGRATION_WORKERS) tests/integration

molecule: collection build
	MOLECULE_GLOB='molecule/*/molecule.yml' $(BIN)/molecule test -s default

collection-build: venv
	@mkdir -p $(LOCAL)/dist
	$(BIN)/ansible-galaxy collection build --force --output-path $(LOCAL)/dist .

# Module docs as ansible-doc renders them (text per module, all as JSON) under .local/docs,
# and the changelog fragments linted.
docs: collection
	@rm -rf $(LOCAL)/docs && mkdir -p $(LOCAL)/docs/modules
	$(BIN)/ansible-doc -t module -l homelab.k8s_ha
	$(BIN)/ansible-doc -t module -j $$(for m in plugins/modules/*.py; do n=$${m##*/}; echo homelab.k8s_ha.$${n%.py}; done) \
	  > $(LOCAL)/docs/modules.json
	for m in plugins/modules/*.py; do n=$${m##*/}; n=$${n%.py}; \
	  ANSIBLE_NOCOLOR=1 $(BIN)/ansible-doc -t module homelab.k8s_ha.$$n > $(LOCAL)/docs/modules/$$n.txt; done
	$(BIN)/antsibull-changelog lint
	@echo "module docs in $(LOCAL)/docs"

# The execution environment's build context (Containerfile), without a container engine.
ee-context: collection-build
	$(BIN)/ansible-builder create -f execution-environment.yml -c $(LOCAL)/ee --output-filename Containerfile

clean: cluster-down
	rm -rf $(LOCAL) tests/output
