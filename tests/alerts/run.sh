#!/bin/sh
# promtool test rules on the shipped alerting rules: every alert fires on
# the series that should fire it and stays quiet on those that should not.
# usage: tests/alerts/run.sh [PROMTOOL]
# Exit 77 (skipped) without promtool, unless EO_NO_SKIP is set (.ci/run).
set -eu
promtool=${1:-${EO_PROMETHEUS_BIN:+$EO_PROMETHEUS_BIN/promtool}}
promtool=${promtool:-$(command -v promtool || true)}
if [ -z "$promtool" ] || [ ! -x "$promtool" ]; then
  if [ -n "${EO_NO_SKIP:-}" ]; then
    echo "FAIL: no promtool, and EO_NO_SKIP is set (Debian: prometheus)" >&2
    exit 1
  fi
  echo "SKIP: no promtool (Debian package prometheus)" >&2
  exit 77
fi
exec "$promtool" test rules "$(dirname "$0")/echo-oracled-alerts.test.yml"
