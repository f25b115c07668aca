/**
 * The prompt set of the comparison, shared by the contenders and the harness that submits the same
 * set to gemini-fanout: `n` distinct ASCII prompts of `chars` characters each. Prompt i opens with
 * {@link itemTag}(i) within its first 60 characters, so {@link echoes} tells its answer from any other.
 */
const FILLER =
  'Summarise the following notes in one sentence. The quarterly report covers revenue, costs, ' +
  'hiring, the new office, customer feedback, open risks and the plan for the next quarter. ';

/** The opening of prompt i, e.g. `item 42:`; the colon keeps `item 4:` from matching `item 42:`. */
export function itemTag(i: number): string {
  return `item ${i}:`;
}

/** Prompt i: its tag, a short request, then filler up to `chars` characters (never shorter than the tag and request). */
export function makePrompt(i: number, chars: number): string {
  const head = `${itemTag(i)} say something short about the number ${i}.`;
  if (head.length >= chars) return head;
  let body = ` ${FILLER}`;
  while (head.length + body.length < chars) body += FILLER;
  return (head + body).slice(0, chars);
}

export function makePrompts(n: number, chars: number): string[] {
  return Array.from({ length: n }, (_, i) => makePrompt(i, chars));
}

/**
 * Whether `answer` is the answer to `prompt`: the stand-in's answer echoes the first 200 characters of
 * its prompt, so an answer kept at the wrong index (or none) says so. Only meaningful on the stand-in.
 */
export function echoes(answer: string | undefined, prompt: string): boolean {
  return answer?.includes(prompt.slice(0, 60)) ?? false;
}
