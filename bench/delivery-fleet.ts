import { generateKeyPair, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { nodeCredentialContext } from '@rackseal/attestation';
import { sealEnvelope } from '@rackseal/envelope';
import type { MasterKeyInput } from '@rackseal/envelope';
import type { NodeCredential } from '@rackseal/node-identity';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { CERTIFIED_DECRYPT_KEY_TEMPLATE, EK_TEMPLATE_RSA_L1, marshalTpmtPublic, objectName, tpmtPublicFromKey } from '@rackseal/tpm2';
import type { DataSource } from 'typeorm';

const generate = promisify(generateKeyPair);

/** One simulated machine: what its agent holds (the node credential, the certified key's private half). */
export interface SimulatedMachine {
  readonly id: string;
  readonly serial: string;
  readonly credential: NodeCredential;
  /** The software stand-in for the TPM-resident private half of its certified RSA-2048 decrypt key. */
  readonly privateKey: KeyObject;
}

/**
 * `count` machines of `group` seeded straight into PostgreSQL as an attestation and a key
 * certification leave them (the tables of libs/machines and libs/attestation, written as their
 * repositories write them): `machines` attested; an `attestation_registrations` row finished
 * `attested`; a live `node_credentials` row whose key is sealed under the master key exactly as
 * FinishAttestation seals it; a live `certified_keys` row with the TPMT_PUBLIC (TPM 2.0 Part 2
 * §12.2.4) of an RSA-2048 software key made with CERTIFIED_DECRYPT_KEY_TEMPLATE, and its Name.
 *
 * RSA-2048 key generation costs ~0.1 s of CPU each, so `distinctKeys` keys are made and dealt to the
 * machines in turn. With more distinct keys than libs/tpm2's KeyObject cache holds (1,024) and the
 * fan-out walking the machines in order, every wrap misses the cache, as it would for 10,000
 * distinct keys. EK publics and ekPubHashes are per machine (random: the certified-key binding does
 * not read them).
 */
export async function seedFleet(ds: DataSource, options: { count: number; distinctKeys: number; group: string; masterKey: MasterKeyInput }): Promise<SimulatedMachine[]> {
  const keys: { privateKey: KeyObject; publicArea: Buffer; name: Buffer; ekPublic: Buffer }[] = [];
  for (let i = 0; i < options.distinctKeys; i += 64) {
    const batch = await Promise.all(Array.from({ length: Math.min(64, options.distinctKeys - i) }, () => generate('rsa', { modulusLength: 2048 })));
    for (const { publicKey, privateKey } of batch) {
      const pub = tpmtPublicFromKey(publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE);
      keys.push({ privateKey, publicArea: marshalTpmtPublic(pub), name: objectName(pub), ekPublic: marshalTpmtPublic(tpmtPublicFromKey(publicKey, EK_TEMPLATE_RSA_L1)) });
    }
  }
  const machines: SimulatedMachine[] = [];
  const at = new Date();
  const BATCH = 1000;
  for (let start = 0; start < options.count; start += BATCH) {
    const rows = Array.from({ length: Math.min(BATCH, options.count - start) }, (_, j) => {
      const i = start + j;
      const key = keys[i % keys.length]!;
      const credential: NodeCredential = { credentialId: randomBytes(16).toString('hex'), key: new SecretBytes(randomBytes(32)) };
      return {
        machine: { id: randomUUID(), serial: `BENCH-${String(i).padStart(5, '0')}`, credential, privateKey: key.privateKey },
        registrationId: randomUUID(),
        ekPubHash: randomBytes(32).toString('hex'),
        key,
        keySealed: sealEnvelope(options.masterKey, nodeCredentialContext(credential.credentialId), credential.key),
      };
    });
    const column = <T>(pick: (r: (typeof rows)[number]) => T): T[] => rows.map(pick);
    await ds.transaction(async (m) => {
      await m.query(
        `INSERT INTO machines (id, serial, hostname, group_name, ek_pub_hash, state, imported_at, updated_at, first_attested_at, last_attested_at)
         SELECT id, serial, serial || '.bench', $4, ek, 'attested', $5, $5, $5, $5 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t (id, serial, ek)`,
        [column((r) => r.machine.id), column((r) => r.machine.serial), column((r) => r.ekPubHash), options.group, at],
      );
      await m.query(
        `INSERT INTO attestation_registrations (id, machine_id, previous_state, ek_pub_hash, ek_public, ak_public, ak_name, secret_sealed, nonce, pcr_bank, pcrs, created_at, deadline, finished_at, outcome)
         SELECT id, machine_id, 'imported', ek, ek_public, ek_public, ak_name, secret_sealed, nonce, 'sha256', '{0,7}', $8::timestamptz, $8::timestamptz + interval '1 minute', $8::timestamptz, 'attested'
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[]) AS t (id, machine_id, ek, ek_public, ak_name, secret_sealed, nonce)`,
        [
          column((r) => r.registrationId),
          column((r) => r.machine.id),
          column((r) => r.ekPubHash),
          column((r) => r.key.ekPublic),
          column((r) => r.key.name),
          column(() => randomBytes(64)),
          column(() => randomBytes(32)),
          at,
        ],
      );
      await m.query(
        `INSERT INTO node_credentials (credential_id, machine_id, registration_id, key_sealed, created_at)
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::bytea[]) AS t, (VALUES ($5::timestamptz)) AS c`,
        [column((r) => r.machine.credential.credentialId), column((r) => r.machine.id), column((r) => r.registrationId), column((r) => r.keySealed), at],
      );
      await m.query(
        `INSERT INTO certified_keys (id, machine_id, registration_id, credential_id, public_area, name, algorithm, created_at)
         SELECT gen_random_uuid(), machine_id, registration_id, credential_id, public_area, name, 'rsa-2048', $6
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::bytea[]) AS t (machine_id, registration_id, credential_id, public_area, name)`,
        [column((r) => r.machine.id), column((r) => r.registrationId), column((r) => r.machine.credential.credentialId), column((r) => r.key.publicArea), column((r) => r.key.name), at],
      );
    });
    machines.push(...rows.map((r) => r.machine));
  }
  return machines;
}
