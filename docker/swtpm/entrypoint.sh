#!/bin/sh
# The swtpm sidecar: one software TPM 2.0 standing in for one machine's TPM; the agent reaches it as
# `--tpm swtpm:HOST:PORT` (docs/architecture.md §6). Usage:
#
#   entrypoint.sh              manufacture the TPM on first start, then serve it in the foreground
#   entrypoint.sh healthcheck  exit 0 while the TPM's control channel answers (the image's HEALTHCHECK)
#
# First start "manufactures" the TPM the way a vendor does (swtpm_setup, as test/support/swtpm.ts does):
# RSA-2048 and ECC P-384 EKs with EK certificates signed by a local "vendor" CA, a platform
# certificate, NV locked. Everything lives under SWTPM_STATE_ROOT (a volume), so the TPM keeps its
# identity across restarts, and every start is a reboot (startup-clear: PCRs back to their reset values).
set -eu

STATE_ROOT="${SWTPM_STATE_ROOT:-/var/lib/swtpm}"
# Data port; the control port is always PORT + 1 because the tss2 swtpm TCTI (tpm2-tools) insists on it.
PORT="${SWTPM_PORT:-2321}"
CTRL_PORT=$((PORT + 1))
# The TPM has no authentication of its own: only ever reachable on the compose network, never published.
BIND="${SWTPM_BIND:-0.0.0.0}"
PCR_BANKS="${SWTPM_PCR_BANKS:-sha256}"

TPM_STATE="$STATE_ROOT/tpm"
EK_CERTS="$STATE_ROOT/ek-certs"
VENDOR_CA="$STATE_ROOT/vendor-ca"
# swtpm_setup and swtpm_localca read their configuration, and keep the local CA's key, under here.
export XDG_CONFIG_HOME="$STATE_ROOT/config"
MANUFACTURED="$STATE_ROOT/.manufactured"
# Optional: a directory (another volume) that receives the TPM's public certificates on every start,
# readable by others — what a vendor ships with the machine: its EK certificates (DER) and the
# "vendor" CA certificates they chain to. The state root stays 0700; compose's fleet-setup reads this.
PUBLIC_DIR="${SWTPM_PUBLIC_DIR:-}"

say() {
  printf 'swtpm-entrypoint: %s\n' "$*" >&2
}

if [ "${1:-}" = healthcheck ]; then
  # -e (read tpmEstablished) is a harmless control-channel command. The data channel is not probed:
  # swtpm serves one data connection at a time, so a probe would hang while the agent is connected.
  if [ "$BIND" = 0.0.0.0 ]; then
    probe_host=127.0.0.1
  else
    probe_host="$BIND"
  fi
  exec swtpm_ioctl --tcp "$probe_host:$CTRL_PORT" -e >/dev/null
fi
if [ "$#" -gt 0 ]; then
  say "unknown argument: $1 (usage: entrypoint.sh [healthcheck])"
  exit 2
fi

manufacture() {
  mkdir -p "$XDG_CONFIG_HOME" "$TPM_STATE" "$EK_CERTS" "$VENDOR_CA"
  # 'root' lets swtpm_setup write the per-user config files when running as root (tests, `docker run
  # --user 0`); the image itself runs as the unprivileged tss user.
  if [ "$(id -u)" -eq 0 ]; then
    create_flags=root,skip-if-exist
  else
    create_flags=skip-if-exist
  fi
  swtpm_setup --create-config-files "$create_flags"
  # --overwrite: a first start that died half-way left no marker; start that TPM over from scratch.
  swtpm_setup --tpm2 --tpmstate "$TPM_STATE" --config "$XDG_CONFIG_HOME/swtpm_setup.conf" \
    --create-ek-cert --create-platform-cert --lock-nvram --overwrite \
    --pcr-banks "$PCR_BANKS" --write-ek-cert-files "$EK_CERTS"
  # The certificates (not the keys) of the "vendor" chain the EK certificates were issued under, for
  # the operator to trust (`rackseal vendor-ca add`, once it exists). The CA keys stay in swtpm_localca's directory.
  cp "$XDG_CONFIG_HOME/var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem" \
    "$XDG_CONFIG_HOME/var/lib/swtpm-localca/issuercert.pem" "$VENDOR_CA/"
  touch "$MANUFACTURED"
  say "manufactured a TPM 2.0 in $TPM_STATE; EK certificates in $EK_CERTS, vendor CA certificates in $VENDOR_CA"
}

if [ -f "$MANUFACTURED" ]; then
  say "TPM already manufactured in $TPM_STATE; starting it"
else
  manufacture
fi

# Certificates only, never the state: nothing here lets anyone act as this TPM.
publish_certificates() {
  mkdir -p "$PUBLIC_DIR/ek-certs" "$PUBLIC_DIR/vendor-ca"
  chmod 0755 "$PUBLIC_DIR" "$PUBLIC_DIR/ek-certs" "$PUBLIC_DIR/vendor-ca"
  for file in "$EK_CERTS"/*.crt; do
    install -m 0644 "$file" "$PUBLIC_DIR/ek-certs/"
  done
  for file in "$VENDOR_CA"/*.pem; do
    install -m 0644 "$file" "$PUBLIC_DIR/vendor-ca/"
  done
  say "EK and vendor CA certificates published in $PUBLIC_DIR"
}

if [ -n "$PUBLIC_DIR" ]; then
  publish_certificates
fi

say "serving TPM 2.0 on $BIND:$PORT (control channel $BIND:$CTRL_PORT)"
exec swtpm socket --tpm2 \
  --server "type=tcp,port=$PORT,bindaddr=$BIND" \
  --ctrl "type=tcp,port=$CTRL_PORT,bindaddr=$BIND" \
  --tpmstate "dir=$TPM_STATE" \
  --flags not-need-init,startup-clear
