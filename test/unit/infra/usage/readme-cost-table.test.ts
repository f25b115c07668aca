import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');

/** The table rows (lines starting with `|`) of `text`. */
const tableRows = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('|'));

describe("README's machinery table", () => {
  test('is the committed result of npm run bench:cost (bench/results/cost.md), row for row', () => {
    // Arrange
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('### What the machinery costs');
    const end = readme.indexOf('\n## ', start);
    const committed = readFileSync(join(ROOT, 'bench', 'results', 'cost.md'), 'utf8');

    // Act
    const inReadme = tableRows(readme.slice(start, end));

    // Assert
    expect(start).toBeGreaterThan(0);
    expect(inReadme).toEqual(tableRows(committed));
    expect(inReadme.length).toBe(6);
  });
});
