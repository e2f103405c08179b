# podkit.docker — the two commands README.md documents are `make demo` and `make test`.
# Every target installs what it needs first (Debian packages, dockerd, .venv, local images).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(TOP)/.venv
BIN := $(VENV)/bin
# ansible-playbook and the tests import the collection through a link to this tree;
# ansible-test needs a real copy (it checks the physical working directory).
LINK := $(TOP)/build/collections/ansible_collections/podkit/docker
COLL ?= $(TOP)/build/sanity/ansible_collections/podkit/docker
SANITY_ARGS ?=
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(TOP)/build/collections
export ANSIBLE_ROLES_PATH := $(TOP)/roles
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

.PHONY: demo test setup host engine venv core-venvs images collection sanity-tree lint sanity unit integration molecule test-vm bench build ee-context release-changelog clean

## make demo: set up this host and run the main job on localhost
demo: setup
	$(TOP)/scripts/demo.sh

## make test: set up this host and run every test and gate
test: setup
	$(TOP)/scripts/test.sh

setup: host engine venv images collection

host:
	$(TOP)/scripts/setup-host.sh

engine: host
	$(TOP)/scripts/start-dockerd.sh

venv: host
	$(TOP)/scripts/setup-venv.sh

## core-venvs: one environment per older supported ansible-core (build/core-<version>), from PyPI
core-venvs: host
	$(TOP)/scripts/setup-core-venvs.sh

images: engine
	$(TOP)/scripts/build-images.sh

collection:
	mkdir -p $(dir $(LINK)) && ln -sfn $(TOP) $(LINK)

sanity-tree:
	$(TOP)/scripts/layout-collection.sh $(COLL)
	$(TOP)/scripts/ansible-test-pip.sh $(BIN)/python

lint: setup
	cd $(TOP) && $(BIN)/ansible-lint --profile production

## sanity: ansible-test sanity, then the changelog: every fragment and changelogs/changelog.yaml
sanity: setup sanity-tree
	@# ansible-test skips its shellcheck test when the program is missing: a skip is no pass.
	@command -v shellcheck >/dev/null || { echo 'sanity: shellcheck is not installed (make host installs it)' >&2; exit 1; }
	cd $(COLL) && $(BIN)/ansible-test sanity --venv --requirements --python 3.11 --color no $(SANITY_ARGS)
	cd $(TOP) && $(BIN)/antsibull-changelog lint && $(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

unit: setup
	cd $(TOP) && $(BIN)/pytest tests/unit

integration: setup
	cd $(TOP) && $(BIN)/pytest tests/integration

molecule: setup
	cd $(TOP) && $(BIN)/molecule test --all

test-vm: setup
	$(TOP)/tests/vm/run.sh

bench: setup
	$(BIN)/python $(TOP)/benchmarks/run.py

## build: the collection tarball, in build/
build: venv
	cd $(TOP) && $(BIN)/ansible-galaxy collection build --force --output-path build

## ee-context: the execution environment's build context (meta/execution-environment.yml), in
## build/ee; building the image from it (ansible-builder build) needs a container registry
ee-context: venv
	cd $(TOP) && $(BIN)/ansible-builder create -f meta/execution-environment.yml -c build/ee

## release-changelog: at a release, once galaxy.yml has the new version: fold the fragments in
## changelogs/fragments into changelogs/changelog.yaml and write CHANGELOG.md from it
release-changelog: venv collection
	cd $(TOP) && $(BIN)/antsibull-changelog release

clean:
	rm -rf $(TOP)/build $(TOP)/tests/output
