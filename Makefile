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

.PHONY: demo test setup host engine venv core-venvs images collection sanity-tree lint sanity unit integration molecule test-vm box docs bench bench-workloads build importer ee-context release-changelog release clean

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

## test-vm: the Debian 12 VM test: make box, vagrant up (site.yml), tests/vm, vagrant destroy (tests/vm/run.sh)
test-vm: setup
	$(TOP)/tests/vm/run.sh

## box: the VM test's Debian 12 disk made a libvirt Vagrant box and added as podkit/debian12 (cached by recipe)
box: venv
	$(TOP)/tests/vagrant/make-box.sh

## docs: the docs site built offline by antsibull-docs (build/docs/site/build/html), its docs lint, and its
## front page opened in headless Chromium (screenshot: build/docs/index.png)
docs: venv collection
	$(TOP)/scripts/docs.sh

bench: setup
	$(BIN)/python $(TOP)/benchmarks/run.py

## bench-workloads: a 10-replica Deployment against docker-compose --scale (benchmarks/results/workloads.md)
bench-workloads: setup
	$(BIN)/python $(TOP)/benchmarks/workload_bench.py

## build: the collection tarball, in build/
build: venv
	cd $(TOP) && $(BIN)/ansible-galaxy collection build --force --output-path build

## importer: Galaxy's importer (galaxy-importer) on a freshly built tarball, offline; fails on an
## import error or an ansible-lint finding
importer: venv
	$(TOP)/scripts/galaxy-importer.sh

## ee-context: the execution environment's build context (meta/execution-environment.yml), in
## build/ee; building the image from it (ansible-builder build) needs a container registry
ee-context: venv
	cd $(TOP) && $(BIN)/ansible-builder create -f meta/execution-environment.yml -c build/ee

## release-changelog: fold the fragments in changelogs/fragments into the release galaxy.yml names
## (or VERSION) in changelogs/changelog.yaml, and write CHANGELOG.md from it. Run again for the
## same version, it folds fragments added since into that release (--update-existing).
release-changelog: venv collection
	cd $(TOP) && $(BIN)/antsibull-changelog release --update-existing $(if $(VERSION),--version $(VERSION))

## release VERSION=X.Y.Z: galaxy.yml's version (and the one podkit-guard reports) set to X.Y.Z, the changelog released, the tarball
## built into build/ and imported by Galaxy's importer. Re-runnable: run again with the same
## VERSION after late fragments to fold them into the release and rebuild; commit what it changed.
release: venv collection
	@[[ "$(VERSION)" =~ ^[0-9]+\.[0-9]+\.[0-9]+$$ ]] || { echo 'make release: give VERSION=X.Y.Z (semantic versioning)' >&2; exit 2; }
	cd $(TOP) && sed -i -E 's/^version: .*/version: $(VERSION)/' galaxy.yml
	cd $(TOP) && sed -i -E 's/^VERSION = ".*"$$/VERSION = "$(VERSION)"/' plugins/module_utils/_guard.py
	$(MAKE) --no-print-directory release-changelog VERSION=$(VERSION)
	cd $(TOP) && $(BIN)/ansible-galaxy collection build --force --output-path build
	$(TOP)/scripts/galaxy-importer.sh $(TOP)/build/podkit-docker-$(VERSION).tar.gz
	@echo "make release: podkit.docker $(VERSION) is build/podkit-docker-$(VERSION).tar.gz; commit galaxy.yml, _guard.py, changelogs/ and CHANGELOG.md"

clean:
	rm -rf $(TOP)/build $(TOP)/tests/output
