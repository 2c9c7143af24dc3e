# mlops-platform. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENGINE_VENV ?= .venv-engine
ENGINE_STAMP := $(ENGINE_VENV)/.installed
STACK ?= dev
OUT ?= out/render

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[ml,dev]"
	$(BIN)/python -m pip check
	touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment from nothing (idempotent)

test: $(STAMP) ## Install and run the test suite (slow end-to-end tests apart: make test-slow; engine: make test-engine)
	$(BIN)/python -m pytest -m "not engine and not slow"

test-slow: $(STAMP) ## The slow tier: end-to-end tests on real processes (the demo's loop, pipeline runs, crashes)
	$(BIN)/python -m pytest -m "slow and not engine" -p no:cacheprovider --durations=15

demo: $(STAMP) ## The whole loop on the local target (train, register, deploy, monitor, retrain)
	$(BIN)/mlops demo $(DEMO_ARGS)

render: $(STAMP) ## Render the $(STACK) stack's Kubernetes objects offline into $(OUT)
	$(BIN)/mlops render --stack $(STACK) --out $(OUT)

golden: $(STAMP) ## Rewrite golden files (render, pipeline IR) on purpose; review the diff
	MLOPS_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q -k golden

bench: $(STAMP) ## Run every benchmark and print its table (slow; not part of test)
	for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

project-new: $(STAMP) ## Scaffold a new project beside this checkout: make project-new NAME=loan-risk [DIR=..]
	@test -n "$(NAME)" || { echo "set NAME=<project name>, e.g. make project-new NAME=loan-risk"; exit 2; }
	$(BIN)/mlops project new $(NAME) --dir $(or $(DIR),..)

pipeline-ir: $(STAMP) ## Compile the example's pipeline for mlops:monitoring.monitor.pipeline into build/
	$(BIN)/mlops pipeline compile examples/credit_default/pipeline.py:credit_default_pipeline --out build/credit_default_pipeline.yaml

REGISTRY ?= ghcr.io/mlops-platform

images: $(STAMP) ## Build the platform's own images for $(REGISTRY) (needs docker, podman or buildah)
	$(BIN)/mlops images build --registry $(REGISTRY)

images-push: $(STAMP) ## Push the built images to $(REGISTRY)
	$(BIN)/mlops images push --registry $(REGISTRY)

images-lock: $(STAMP) ## Regenerate docker/requirements/*.txt (exact pins, uv)
	$(BIN)/mlops images lock

kfp-manifests: $(STAMP) ## Make a KFP manifests copy air-gap ready: KFP=<kubeflow/pipelines manifests/kustomize @2.17.0> ARGO=<argo-workflows manifests @v4.0.5> [MIRROR=<registry prefix>]
	@test -n "$(KFP)" -a -n "$(ARGO)" || { echo "set KFP=<path> and ARGO=<path> (and MIRROR=<registry prefix> for mlops:images.mirror)"; exit 2; }
	$(BIN)/python -c 'from pathlib import Path; from platform_components.kubernetes.kfp import localize_argo_refs; print(*localize_argo_refs(Path("$(KFP)"), Path("$(ARGO)"), "v4.0.5"), sep="\n")'
	$(if $(MIRROR),$(BIN)/python -c 'from pathlib import Path; from platform_components import images; from platform_components.kubernetes.kfp import mirror_kfp_images; from platform_components.settings import ImagesSettings; print(*mirror_kfp_images(Path("$(KFP)"), images.kustomize_images(ImagesSettings(mirror="$(MIRROR)"))), sep="\n")')

tools: ## Build the pinned Go tools (promtool, ...) into ~/.cache/mlops-platform/tools (needs go; warm: seconds)
	$(PYTHON) tools/build.py $(TOOLS)

engine: ## Build every pinned Go tool of the engine tier (Pulumi CLI, provider, etcd, Kubernetes; long cold)
	$(PYTHON) tools/build.py

$(ENGINE_STAMP): pyproject.toml tests/engine/requirements.txt
	$(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ENGINE_VENV)/bin/python -m pip install --quiet -r tests/engine/requirements.txt -e .
	$(ENGINE_VENV)/bin/python -m pip check
	touch $(ENGINE_STAMP)

engine-venv: $(ENGINE_STAMP) ## The engine tier's Pulumi program venv (the exact SDK pins the tools match)

test-engine: $(STAMP) $(ENGINE_STAMP) engine ## The real Pulumi engine, provider and API server (needs go)
	$(BIN)/python -m pytest -m engine tests/engine -p no:cacheprovider -rA --tb=short

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check platform_components infra tests bench examples
	$(BIN)/ruff format --check platform_components infra tests bench examples

clean: ## Remove the environment, local state and render output
	rm -rf $(VENV) $(ENGINE_VENV) .mlops out

.PHONY: help venv engine-venv test test-slow test-engine demo render golden bench images images-push images-lock kfp-manifests tools engine lint clean
