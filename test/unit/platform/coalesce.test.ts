import { describe, expect, it } from 'vitest';
import { type Coalescing, coalesce } from '../../../functions/platform/store/coalesce.js';

/** A store that records what it was sent: each `together` request, each `alone` call. */
function recording(fail?: (inputs: string[]) => boolean) {
  const sent: Array<{ together: string[] } | { alone: string }> = [];
  const how: Coalescing<string, string> = {
    key: (s) => {
      if (s === '') throw new Error('no key');
      return s.split('#')[0]!;
    },
    max: 3,
    async together(inputs) {
      sent.push({ together: inputs });
      if (fail?.(inputs)) throw new Error('batch refused');
      return inputs.map((s) => `T:${s}`);
    },
    async alone(input) {
      sent.push({ alone: input });
      if (input.startsWith('bad')) throw new Error(`refused ${input}`);
      return `A:${input}`;
    },
  };
  return { sent, call: coalesce(how) };
}

describe('coalesce', () => {
  it('sends the calls of one turn as one request, each caller getting its own answer', async () => {
    const { sent, call } = recording();
    expect(await Promise.all([call('a'), call('b'), call('c')])).toEqual(['T:a', 'T:b', 'T:c']);
    expect(sent).toEqual([{ together: ['a', 'b', 'c'] }]);
  });

  it('sends a lone call alone, and calls of later turns in requests of their own', async () => {
    const { sent, call } = recording();
    expect(await call('a')).toBe('A:a');
    expect(await Promise.all([call('b'), call('c')])).toEqual(['T:b', 'T:c']);
    expect(sent).toEqual([{ alone: 'a' }, { together: ['b', 'c'] }]);
  });

  it('splits a turn into requests of at most `max` calls', async () => {
    const { sent, call } = recording();
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map(call));
    expect(sent).toEqual([{ together: ['a', 'b', 'c'] }, { together: ['d', 'e'] }]);
  });

  it('never puts two calls on the same key in one request', async () => {
    const { sent, call } = recording();
    expect(await Promise.all([call('a#1'), call('b'), call('a#2')])).toEqual(['T:a#1', 'T:b', 'A:a#2']);
    expect(sent).toContainEqual({ together: ['a#1', 'b'] });
    expect(sent).toContainEqual({ alone: 'a#2' });
  });

  it('sends every call of a failed request again alone, so each learns its own fate', async () => {
    const { sent, call } = recording((inputs) => inputs.includes('bad'));
    const answers = await Promise.allSettled([call('a'), call('bad'), call('c')]);
    expect(answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message))).toEqual([
      'A:a',
      'refused bad',
      'A:c',
    ]);
    expect(sent).toEqual([{ together: ['a', 'bad', 'c'] }, { alone: 'a' }, { alone: 'bad' }, { alone: 'c' }]);
  });

  it('fails a call whose key cannot be made on its own, and serves the others', async () => {
    const { sent, call } = recording();
    const answers = await Promise.allSettled([call('a'), call(''), call('b')]);
    expect(answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message))).toEqual([
      'T:a',
      'no key',
      'T:b',
    ]);
    expect(sent).toEqual([{ together: ['a', 'b'] }]);
  });
});
