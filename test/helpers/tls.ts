import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A self-signed certificate made for this test run with `openssl` (P-256, one day), for the given
 * subjectAltName entries (`DNS:name`, `IP:127.0.0.1`); the first DNS name is also the CN. Tests
 * trust it through an agent's or request's `ca`, so https servers on loopback look like the real
 * thing to the code under test.
 */
export function selfSignedCert(altNames: string[]): { key: Buffer; cert: Buffer } {
  const cn = altNames.find((n) => n.startsWith('DNS:'))?.slice(4) ?? 'localhost';
  const dir = mkdtempSync(join(tmpdir(), 'tls-test-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${cn}`,
        '-addext',
        `subjectAltName=${altNames.join(',')}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
