import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { PipelineFields } from '../functions/api/jobs.js';
import { checkPipelineFields, describePipelineProblems } from '../functions/api/pipeline-fields.js';

/**
 * Reads `submit --pipeline FILE`: YAML or JSON (YAML reads JSON as it is), either `{steps,
 * onStepError?}` or just the list of steps. Checked here with the contract's schema, so a bad step
 * is named with its file and field (`pipeline.yaml: steps[1].prompt: …`) before anything is sent.
 * A pipeline file is a few steps, not user data: it is read whole.
 */
export async function readPipelineFile(path: string): Promise<PipelineFields> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `cannot read ${path}: no such file` : `${path}: ${e.message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new Error(`${path}: not YAML or JSON: ${err instanceof Error ? err.message.split('\n')[0] : err}`);
  }
  const checked = checkPipelineFields(value);
  if (!checked.ok) throw new Error(`${path}: ${describePipelineProblems(checked.problems)}`);
  return checked.fields;
}
