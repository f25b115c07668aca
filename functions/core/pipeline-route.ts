import { type RequestedMode, routeJob } from './batch.js';
import type { PipelineSpec } from './pipeline.js';
import type { Quotas } from './quotas.js';

/**
 * The path of a pipeline job (all its steps take the same one): `realtime` on the queues, or
 * `batch`, each step one batch per model through the Batch API (every model of every step must
 * take batch jobs: a problem otherwise). `auto` goes batch when the job would go batch on every
 * model of its steps as an ordinary job of the same size and deadline would (`routeJob`: at least
 * the model's `batchMinItems` items and, with a deadline, at least `routing.batchMinMs` left), and
 * realtime otherwise (never Flex: it is not offered per step). A batch pipeline waits for a whole
 * step before the next starts, which is why it takes the same evidence an ordinary batch job does.
 */
export function routePipeline(
  requested: RequestedMode,
  itemCount: number,
  pipeline: PipelineSpec,
  quotas: Quotas,
  timeLeftMs?: number,
): { mode: 'batch' | 'realtime'; priority?: true } | { problem: string } {
  if (requested !== 'batch' && requested !== 'auto') return { mode: 'realtime' };
  const models = [...new Set(pipeline.steps.flatMap((s) => s.branches.map((b) => b.model)))];
  for (const model of models) {
    const route = routeJob(requested, itemCount, model, quotas, timeLeftMs);
    if ('problem' in route) return route;
    if (route.mode !== 'batch') return { mode: 'realtime' };
  }
  return { mode: 'batch' };
}
