import { z } from 'zod';

/** Field types of the environment schema shared by config.ts and its groups (*-config.ts). */

/** `HOST:PORT`, as the emulators' variables take it; optional. */
export const hostPort = z
  .string()
  .regex(/^[^\s/:]+:\d+$/, 'expected HOST:PORT, for example 127.0.0.1:8080')
  .optional();

export const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/** Comma-separated emails, lowercased. */
export const emailList = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[^\s@,]+@[^\s@,]+$/, 'expected comma-separated emails')));
