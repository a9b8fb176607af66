import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CharacterDeviceTransport } from './device-transport';

describe('CharacterDeviceTransport.open', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-device-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a regular file before writing anything to it (a mistyped --tpm must not overwrite a file)', async () => {
    const path = join(dir, 'passwd');
    const content = 'root:x:0:0:root:/root:/bin/bash\n';
    await writeFile(path, content);
    await expect(CharacterDeviceTransport.open(path)).rejects.toMatchObject({
      name: 'TpmTransportError',
      problem: 'not-found',
      message: `${path}: not a character device: a TPM is /dev/tpmrm0 or /dev/tpm0 (or swtpm:HOST:PORT); nothing was written to it`,
    });
    expect(await readFile(path, 'utf8')).toBe(content);
  });

  it('opens a character device (/dev/null stands in for a TPM here)', async () => {
    const transport = await CharacterDeviceTransport.open('/dev/null');
    await transport.close();
  });

  it('refuses a directory with the system\'s reason', async () => {
    await expect(CharacterDeviceTransport.open(dir)).rejects.toMatchObject({ name: 'TpmTransportError', problem: 'io' });
  });
});
