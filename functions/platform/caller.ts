/**
 * Who is calling ingest. Ingest is private: Cloud Run lets a request through only with a valid
 * Google ID token of an identity that holds `run.invoker` (no `allUsers`), and passes the
 * `Authorization: Bearer …` header on unchanged. So the token's claims are read here without a
 * second verification: its signature was checked at the front. Locally, the functions host plays
 * that front and sets the local developer's token on requests that carry none (see
 * infra/local/functions-host.ts).
 */
export interface Caller {
  /** The token's `email` (lowercased), or its `sub` for an identity without one. */
  id: string;
  /** Listed in `FANOUT_ADMINS`: may read every job, bucket jobs included. */
  admin: boolean;
}

/** The caller of a request from its `Authorization` header; undefined when there is no usable token. */
export function callerFrom(authorization: string | undefined, admins: readonly string[]): Caller | undefined {
  const token = /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/.exec(authorization ?? '');
  if (!token) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(token[2] as string, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const { email, sub } = claims as { email?: unknown; sub?: unknown };
  const id =
    typeof email === 'string' && email.length > 0 && email.length <= 320
      ? email.toLowerCase()
      : typeof sub === 'string' && sub.length > 0 && sub.length <= 255
        ? sub
        : undefined;
  if (!id) return undefined;
  return { id, admin: admins.includes(id) };
}
