#!/bin/sh
# Regenerates deploy/base/portcullis.yaml from the Helm chart's defaults and copies the CRDs.
# test/deploy/chart.test.ts fails when the committed files differ from what this script writes.
set -eu
cd "$(dirname "$0")/.."
helm template portcullis charts/portcullis --namespace portcullis-system > deploy/base/portcullis.yaml
cp crds/*.yaml deploy/base/crds/
