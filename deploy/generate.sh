#!/bin/sh
# Regenerates deploy/base/portcullis.yaml from the Helm chart's defaults (mode: combined) and deploy/split/
# portcullis.yaml from the same with mode: split, and copies the CRDs and the Namespace into both.
# test/deploy/chart.test.ts fails when the committed files differ from what this script writes.
set -eu
cd "$(dirname "$0")/.."
helm template portcullis charts/portcullis --namespace portcullis-system > deploy/base/portcullis.yaml
helm template portcullis charts/portcullis --namespace portcullis-system --set mode=split > deploy/split/portcullis.yaml
cp crds/*.yaml deploy/base/crds/
cp crds/*.yaml deploy/split/crds/
cp deploy/base/namespace.yaml deploy/split/namespace.yaml
