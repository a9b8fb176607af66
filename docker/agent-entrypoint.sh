#!/bin/sh
# The agent image's command: one machine's rackseal-agent in compose (docker/compose.yaml). Usage:
#
#   rackseal-agent-entrypoint [--tpm DEVICE] [--config FILE] [--state-dir DIR]
#
# The flags go to every rackseal-agent command below (all three take them). A machine whose state
# dir holds no usable enrollment enrolls first; then `run` takes over for good: it re-attests on
# its group's interval and installs deliveries (README.md, the agent's table). An enrollment the
# control plane refuses — the machine not imported yet, or quarantined because its group has no
# PCR policy until fleet-setup promotes the canary — exits with enroll's code, and compose's
# restart policy tries again (with docker's growing delay), the way a booting machine would.
set -u

say() {
  printf 'rackseal-agent-entrypoint: %s\n' "$*" >&2
}

# Exit 0: enrolled, and the sealed node credential opens in this TPM; anything else: enroll.
if rackseal-agent status --offline "$@" >/dev/null 2>&1; then
  say "enrolled; starting the daemon"
else
  say "no usable enrollment in the state dir; enrolling"
  rackseal-agent enroll "$@"
  code=$?
  if [ "$code" -ne 0 ]; then
    say "enrollment ended with exit $code; the container restarts and tries again"
    exit "$code"
  fi
fi
exec rackseal-agent run "$@"
