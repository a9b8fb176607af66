#!/bin/sh
# compose's one-shot `fleet-setup`: what an operator does once for a new fleet (docs/guide/), done
# for the swtpm "machines" of docker/compose.yaml. It runs in the control-plane image (which has the
# `rackseal` CLI) with each machine's published certificates mounted read-only at
# /fleet/machine-N (the swtpm sidecar's SWTPM_PUBLIC_DIR: EK certificates and the "vendor" CA that
# issued them, what a vendor ships with a server). Safe to run again: every step is idempotent or
# skipped when done, so compose's restart policy may simply retry a failed run.
#
#   1. a token for this job only, straight in PostgreSQL (the scopes it needs, not admin);
#   2. the vendor CAs;
#   3. the inventory CSV (serial, hostname, group, ek_cert as base64 DER), imported atomically;
#   4. the group's PCR policy from the canary (machine 1) once its agent has attested once:
#      quarantined for `attestation.no-policy`, its measured values kept; promote makes them the
#      allowed set and the other agents' next enrollment passes;
#   5. two secrets for the group, which the agents install where docker/agent.yaml says.
set -eu

FLEET=${FLEET_DIR:-/fleet}
GROUP=${FLEET_GROUP:-demo}
CANARY_SERIAL=DEMO-0001
CSV=$(mktemp)
trap 'rm -f "$CSV"' EXIT

say() {
  printf 'fleet-setup: %s\n' "$*" >&2
}

# 1. The token stays in this shell's environment (never argv, never a file); RACKSEAL_SERVER is set
#    by compose. `token create` migrates a fresh database itself, under the processes' advisory lock.
RACKSEAL_TOKEN=$(rackseal token create --name compose-fleet-setup --scope vendor-ca:write inventory:write policy:write secrets:write)
export RACKSEAL_TOKEN

# 2. Every machine's vendor CA (each swtpm was manufactured with its own local CA; duplicates are ignored).
machines=$(find "$FLEET" -mindepth 1 -maxdepth 1 -type d -name 'machine-*' | sort)
if [ -z "$machines" ]; then
  say "no machine-* directories under $FLEET"
  exit 2
fi
for dir in $machines; do
  rackseal vendor-ca add "$dir/vendor-ca"
done

# 3. The inventory: one row per machine, its RSA EK certificate as base64 DER in the ek_cert column.
printf 'serial,hostname,group,ek_cert\n' >"$CSV"
for dir in $machines; do
  n=${dir##*/machine-}
  printf 'DEMO-%04d,machine-%s,%s,%s\n' "$n" "$n" "$GROUP" "$(base64 -w0 "$dir/ek-certs/ek-rsa2048.crt")" >>"$CSV"
done
rackseal inventory import "$CSV"

# 4. The canary's first attestation gives the evidence the policy is made of: `policy promote` is
#    refused (exit 1) until it exists. Up to 10 minutes: the agent retries with docker's restart delay.
attempts=120
until rackseal policy promote "$GROUP" --machine "$CANARY_SERIAL" --label compose-swtpm --mode enforce; do
  attempts=$((attempts - 1))
  if [ "$attempts" -le 0 ]; then
    say "the canary $CANARY_SERIAL never brought evidence to promote; see its agent's log"
    exit 1
  fi
  say "waiting for the canary $CANARY_SERIAL to attest once ($attempts tries left)"
  sleep 5
done

# 5. Secrets: a TLS key and certificate per machine (cluster TLS CA created on first use) and one
#    generated opaque value shared by the group, both wrapped to each machine's certified TPM key.
if ! rackseal secrets show demo-tls >/dev/null 2>&1; then
  rackseal secrets create demo-tls --kind tls --group "$GROUP" --binding certified-key --san '{hostname}.demo.internal'
fi
if ! rackseal secrets show demo-shared >/dev/null 2>&1; then
  rackseal secrets create demo-shared --kind opaque --group "$GROUP" --binding certified-key
fi
say "done; docker/README.md says how to watch the machines attest and their secrets arrive"
