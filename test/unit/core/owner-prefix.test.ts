import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  looksLikeOwnerPrefix,
  mediaAccessProblems,
  mediaLocationsFor,
  ownerPrefix,
} from '../../../functions/core/owner-prefix.js';

describe('ownerPrefix', () => {
  it('is the first 32 hex digits of SHA-256 of the identity: stable, lowercase, path-safe', () => {
    const prefix = ownerPrefix('alice@example.com');

    expect(prefix).toBe(createHash('sha256').update('alice@example.com').digest('hex').slice(0, 32));
    expect(prefix).toMatch(/^[0-9a-f]{32}$/);
    expect(ownerPrefix('alice@example.com')).toBe(prefix);
    expect(looksLikeOwnerPrefix(prefix)).toBe(true);
  });

  it('gives every identity its own prefix, also ones a sanitizer would merge', () => {
    const ids = [
      'alice@example.com',
      'alice.example@com',
      'alice@example.co',
      'alice-example-com',
      'Alice@example.com',
      '1234567890',
      '../alice@example.com',
      'alice@example.com/',
    ];

    expect(new Set(ids.map(ownerPrefix)).size).toBe(ids.length);
  });

  it('tells owner prefixes from ordinary folder names', () => {
    for (const name of ['samples', '2026', 'g'.repeat(32), 'A'.repeat(32), '0'.repeat(31), '0'.repeat(33)]) {
      expect(looksLikeOwnerPrefix(name), name).toBe(false);
    }
  });
});

describe('mediaLocationsFor', () => {
  const access = { roots: ['gs://b/media/', 'gs://other/m/'], shared: ['gs://b/media/samples/'] };

  it('gives an owner its own folder in each root, then the shared prefixes', () => {
    const p = ownerPrefix('bob@example.com');

    expect(mediaLocationsFor(access, 'bob@example.com')).toEqual([
      `gs://b/media/${p}/`,
      `gs://other/m/${p}/`,
      'gs://b/media/samples/',
    ]);
  });

  it('gives a job without an owner the whole roots', () => {
    expect(mediaLocationsFor(access, undefined)).toEqual([
      'gs://b/media/',
      'gs://other/m/',
      'gs://b/media/samples/',
    ]);
  });
});

describe('mediaAccessProblems', () => {
  it('accepts media folders of any bucket and samples inside a root', () => {
    expect(
      mediaAccessProblems('b', {
        roots: ['gs://b/media/', 'gs://b/assets/x/'],
        shared: ['gs://b/media/samples/'],
      }),
    ).toEqual([]);
  });

  it.each([
    ['gs://b/', /whole bucket/],
    ['gs://other/', /whole bucket/],
    ['gs://b/inbox/', /inside inbox\//],
    ['gs://b/staging/', /inside staging\//],
    ['gs://b/answers/', /inside answers\//],
    ['gs://b/results/', /inside results\//],
    ['gs://b/results/alice/', /inside results\//],
  ])('refuses %s as a media root or a shared prefix', (entry, says) => {
    const asRoot = mediaAccessProblems('b', { roots: [entry], shared: [] });
    const asShared = mediaAccessProblems('b', { roots: ['gs://b/media/'], shared: [entry] });

    expect(asRoot).toEqual([expect.stringMatching(/^MEDIA_GCS_ALLOWED: /)]);
    expect(asRoot[0]).toMatch(says);
    expect(asShared[0]).toMatch(/^MEDIA_GCS_SHARED: /);
    expect(asShared[0]).toMatch(says);
  });

  it("takes another bucket's inbox/ as media (only the project bucket's are the service's own)", () => {
    expect(mediaAccessProblems('b', { roots: ['gs://other/inbox/'], shared: [] })).toEqual([]);
  });

  it('refuses a shared prefix that holds a root: every owner would read every other', () => {
    const problems = mediaAccessProblems('b', { roots: ['gs://b/media/'], shared: ['gs://b/media/'] });

    expect(problems).toEqual([expect.stringMatching(/MEDIA_GCS_SHARED: .*holds the media root/)]);
  });
});
