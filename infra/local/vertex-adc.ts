import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Application Default Credentials for the local cloud's Vertex AI mode, offline: an
 * `external_account` credentials file (the format of workload identity federation) whose
 * `token_url` is the Gemini stand-in's Security Token Service (`/v1/token`, gemini/vertex.ts) and
 * whose subject token is a file beside it. google-auth-library reads it through
 * `GOOGLE_APPLICATION_CREDENTIALS` as it would in the cloud, exchanges the subject token for an
 * access token there, and sends `Authorization: Bearer …`: the SDK's own ADC path runs unchanged,
 * and nothing calls Google.
 */

/** The workload identity pool audience the file names (a shape STS accepts; never checked upstream). */
export const LOCAL_STS_AUDIENCE =
  '//iam.googleapis.com/projects/000000000000/locations/global/workloadIdentityPools/local/providers/local';

/** Writes `dir/subject-token` and `dir/adc.json`; the path of the latter (for GOOGLE_APPLICATION_CREDENTIALS). */
export function writeVertexAdc(dir: string, standInUrl: string, subjectToken: string): string {
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, 'subject-token');
  writeFileSync(tokenFile, subjectToken, { mode: 0o600 });
  const file = join(dir, 'adc.json');
  const adc = {
    type: 'external_account',
    audience: LOCAL_STS_AUDIENCE,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: `${standInUrl}/v1/token`,
    credential_source: { file: tokenFile },
  };
  writeFileSync(file, `${JSON.stringify(adc, null, 2)}\n`, { mode: 0o600 });
  return file;
}
