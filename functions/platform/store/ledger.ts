import { FieldValue, type Firestore } from '@google-cloud/firestore';
import pLimit, { type LimitFunction } from 'p-limit';
import { type AdaptiveRate, decreaseAdaptiveRate } from '../../core/adaptive-rate.js';
import { type JobPlan, releaseJobPlan, reserveForJob } from '../../core/job-plan.js';
import { isTerminalJob } from '../../core/jobs.js';
import type { ModelQuota } from '../../core/quotas.js';
import type { DispatchRamp } from '../../core/ramp.js';
import type { DispatchLedger } from '../../core/rate.js';
import { cutAfterTokens429, type TokenRateCut } from '../../core/token-cut.js';
import { evidenceSince, foldEvidence, NO_EVIDENCE, type TokenEvidence } from '../../core/token-evidence.js';
import { type SpendPlan, spendGateFrom, spendLedgerData, spendLedgerRef } from './spend-ledger.js';

export interface ReserveOptions {
  /** Records the reservations in the job's plan, so a cancel gives back what is still ahead. */
  jobId?: string;
  /** Takes back one earlier reservation of the job first (an item planned again). */
  release?: { atMs: number; tokens: number };
  /** Plans only the items that fit before this time: the result may be shorter. */
  untilMs?: number;
  /** How the model's queue ramps up after idling (`quotas.queueRamp`): the plan follows it. */
  ramp?: DispatchRamp | false;
  /** Items a task carries at most (`quotas.itemsPerTask`): the queue's rate counts tasks of that many. */
  itemsPerTask?: number;
  /** Each item goes in a task of its own: it takes a whole task's worth of the queue's rate. */
  alone?: boolean;
  /**
   * The job's token evidence as it stands (`CountersStore.evidence`): what it adds since the job's
   * last fold is folded into the model's (`foldEvidence`), in the same transaction.
   */
  evidence?: TokenEvidence;
  /** The deployment's spend limit and each item's cost: planned on the project's spend ledger too. */
  spend?: SpendPlan;
  /**
   * Aborted when the caller no longer waits for the answer (a delivery that gave up on a slow
   * replanning): a reservation still waiting for its turn in the model's lane is then not made, and
   * rejects with {@link ReserveAbandonedError}. One already running goes on.
   */
  signal?: AbortSignal;
}

/** A reservation whose caller stopped waiting before its turn came (`ReserveOptions.signal`). */
export class ReserveAbandonedError extends Error {
  constructor(model: string) {
    super(`the reservation on ${model} was abandoned before its turn`);
    this.name = 'ReserveAbandonedError';
  }
}

/**
 * Each model's dispatch plan: `ledgers/{model}` holds requests and input tokens per epoch second (the
 * last minute and the future), shared by every job of the model; `ledgers/{model}/jobs/{jobId}` holds
 * what each job reserved. The rules are `core/rate.ts`; this store only reads and writes them.
 */
export interface LedgerStore {
  /**
   * The ledger as it stands (a plain read: no lock). Calls made while a read of the model is in
   * flight share it (late deliveries come in bursts, and each only asks whether the ledger is light).
   */
  read(model: string): Promise<DispatchLedger>;
  /** What the model's jobs' answers counted against their estimates, recent jobs weighing more. */
  evidence(model: string): Promise<TokenEvidence>;
  /**
   * Reserves dispatch slots for items of one model and returns each item's planned send time. For a
   * job (`options.jobId`) that is no longer running, nothing is reserved.
   */
  reserve(
    model: string,
    tokens: number[],
    quota: ModelQuota,
    headroom: number,
    options?: ReserveOptions,
  ): Promise<number[]>;
  /** Gives back a job's reservations for the seconds still ahead (a cancel). */
  releaseJob(model: string, jobId: string): Promise<void>;
  /**
   * Forgets a finished job's plan: its reservations are all behind it. With the job's final
   * evidence, what it adds since its last fold goes to the model's first.
   */
  dropJob(model: string, jobId: string, evidence?: TokenEvidence): Promise<void>;
  /**
   * Gemini refused the model's input tokens for the minute: its planned token rate is lowered for a
   * while (`cutAfterTokens429`); the cut it now holds.
   */
  lowerTokenRate(model: string): Promise<TokenRateCut>;
  /**
   * Gemini answered an adaptive model (`quota.adaptive`) 429: its adaptive request rate takes its
   * multiplicative decrease (`decreaseAdaptiveRate`); the rate it now holds.
   */
  lowerRequestRate(model: string, quota: ModelQuota): Promise<AdaptiveRate | undefined>;
}

export function createLedgerStore(db: Firestore, prefix = ''): LedgerStore {
  const ledgers = db.collection(`${prefix}ledgers`);
  const jobs = db.collection(`${prefix}jobs`);
  const jobPlans = (model: string) => ledgers.doc(model).collection('jobs');
  const spendRef = spendLedgerRef(db, prefix);
  // One transaction at a time per model ledger in this instance: every transaction on the model
  // reads and writes the same document, so running them side by side only makes them wait on each
  // other's locks (a burst of late deliveries replanning at once timed out on the emulator's locks).
  const lanes = new Map<string, LimitFunction>();
  const lane = (model: string) => {
    const limit = lanes.get(model) ?? pLimit(1);
    lanes.set(model, limit);
    return limit;
  };
  const reading = new Map<string, Promise<DispatchLedger>>();
  return {
    read(model) {
      const inFlight = reading.get(model);
      if (inFlight) return inFlight;
      const read = ledgers
        .doc(model)
        .get()
        .then(ledgerFrom)
        .finally(() => reading.delete(model));
      reading.set(model, read);
      return read;
    },

    async evidence(model) {
      return evidenceFrom(await ledgers.doc(model).get());
    },

    async reserve(model, tokens, quota, headroom, options = {}) {
      const ref = ledgers.doc(model);
      const planRef = options.jobId ? jobPlans(model).doc(options.jobId) : undefined;
      const jobRef = options.jobId ? jobs.doc(options.jobId) : undefined;
      return lane(model)(() => {
        // Its caller stopped waiting while it queued: a slot nobody would use, and lane time the
        // reservations still awaited need (late deliveries retried behind it would pile up).
        if (options.signal?.aborted) throw new ReserveAbandonedError(model);
        return db.runTransaction(async (tx) => {
          // The spend ledger is read last, so the job's documents keep their places.
          const snaps = await tx.getAll(
            ref,
            ...(planRef && jobRef ? [planRef, jobRef] : []),
            ...(options.spend ? [spendRef] : []),
          );
          const spendSnap = options.spend ? snaps.pop() : undefined;
          const [ledgerSnap, planSnap, jobSnap] = snaps;
          // A job cancelled meanwhile reserves nothing: its cancel has already given its slots back.
          if (jobSnap && (!jobSnap.exists || isTerminalJob(jobSnap.data()!.status))) return [];
          const stored = planSnap?.exists ? (JSON.parse(planSnap.data()!.planJson) as JobPlan) : {};
          const nowMs = Date.now();
          const gate =
            options.spend && spendSnap ? spendGateFrom(spendSnap, options.spend, nowMs) : undefined;
          const planned = reserveForJob(
            ledgerFrom(ledgerSnap!),
            planRef ? stored : undefined,
            tokens,
            nowMs,
            quota,
            headroom,
            { ...options, ...(gate ? { gate } : {}) },
          );
          if (gate) {
            tx.set(spendRef, spendLedgerData(gate));
            options.spend?.report?.(gate.heldUntilSec());
          }
          const folded = options.evidence && planSnap ? fold(ledgerSnap!, planSnap, options.evidence) : {};
          // Merged: the model's evidence stays unless this reserve folds into it.
          tx.set(ref, { ...ledgerData(planned.ledger), ...folded }, { merge: true });
          if (planRef && planned.jobPlan)
            tx.set(
              planRef,
              {
                planJson: JSON.stringify(planned.jobPlan),
                ...(options.evidence ? { evidenceJson: JSON.stringify(options.evidence) } : {}),
              },
              { merge: true },
            );
          return planned.scheduleMs;
        });
      });
    },

    async releaseJob(model, jobId) {
      const ref = ledgers.doc(model);
      const planRef = jobPlans(model).doc(jobId);
      await lane(model)(() =>
        db.runTransaction(async (tx) => {
          const [ledgerSnap, planSnap] = await tx.getAll(ref, planRef);
          if (!planSnap?.exists) return;
          const ledger = releaseJobPlan(
            ledgerFrom(ledgerSnap!),
            JSON.parse(planSnap.data()!.planJson),
            Date.now(),
          );
          tx.set(ref, ledgerData(ledger), { merge: true });
          tx.delete(planRef);
        }),
      );
    },

    async dropJob(model, jobId, evidence) {
      const planRef = jobPlans(model).doc(jobId);
      if (!evidence || evidence.items === 0) {
        await planRef.delete();
        return;
      }
      const ref = ledgers.doc(model);
      await lane(model)(() =>
        db.runTransaction(async (tx) => {
          const [ledgerSnap, planSnap] = await tx.getAll(ref, planRef);
          // No plan left: the job was dropped before (a repeat), its evidence already folded.
          if (!planSnap?.exists) return;
          tx.set(ref, fold(ledgerSnap!, planSnap, evidence), { merge: true });
          tx.delete(planRef);
        }),
      );
    },

    async lowerTokenRate(model) {
      const ref = ledgers.doc(model);
      return lane(model)(() =>
        db.runTransaction(async (tx) => {
          const ledger = ledgerFrom(await tx.get(ref));
          const tokenCut = cutAfterTokens429(ledger.tokenCut, Date.now());
          tx.set(ref, ledgerData({ ...ledger, tokenCut }), { merge: true });
          return tokenCut;
        }),
      );
    },

    async lowerRequestRate(model, quota) {
      const settings = quota.adaptive;
      if (!settings) return undefined;
      const ref = ledgers.doc(model);
      return lane(model)(() =>
        db.runTransaction(async (tx) => {
          const ledger = ledgerFrom(await tx.get(ref));
          const adaptive = decreaseAdaptiveRate(ledger.adaptive, quota.rpm, Date.now(), settings);
          tx.set(ref, ledgerData({ ...ledger, adaptive }), { merge: true });
          return adaptive;
        }),
      );
    },
  };
}

/**
 * The model's evidence with what the job's `evidence` adds since its plan's last fold: the field to
 * write on the ledger document (the plan document records `evidence` as folded).
 */
function fold(
  ledgerSnap: FirebaseFirestore.DocumentSnapshot,
  planSnap: FirebaseFirestore.DocumentSnapshot,
  evidence: TokenEvidence,
): { evidenceJson: string } {
  const before = planSnap.exists ? planSnap.data()!.evidenceJson : undefined;
  const added = evidenceSince(evidence, before ? (JSON.parse(before) as TokenEvidence) : NO_EVIDENCE);
  return { evidenceJson: JSON.stringify(foldEvidence(evidenceFrom(ledgerSnap), added)) };
}

function evidenceFrom(snap: FirebaseFirestore.DocumentSnapshot): TokenEvidence {
  const json = snap.exists ? snap.data()!.evidenceJson : undefined;
  return json ? { ...NO_EVIDENCE, ...(JSON.parse(json) as Partial<TokenEvidence>) } : NO_EVIDENCE;
}

/** A ledger as stored: JSON strings, not maps, as thousands of per-second keys must not be indexed. */
function ledgerData(ledger: DispatchLedger) {
  return {
    bucketsJson: JSON.stringify(ledger.buckets),
    requestsJson: JSON.stringify(ledger.requests ?? {}),
    ...(ledger.tokenCut ? { tokenCutJson: JSON.stringify(ledger.tokenCut) } : {}),
    ...(ledger.adaptive ? { adaptiveJson: JSON.stringify(ledger.adaptive) } : {}),
    rampFromSec: ledger.rampFromSec ?? null,
    updatedAt: FieldValue.serverTimestamp(),
  };
}

function ledgerFrom(snap: FirebaseFirestore.DocumentSnapshot): DispatchLedger {
  const parse = (field: string) =>
    JSON.parse((snap.exists && snap.data()![field]) || '{}') as Record<string, number>;
  const cut = snap.exists ? (snap.data()!.tokenCutJson as string | undefined) : undefined;
  const rampFromSec = snap.exists ? snap.data()!.rampFromSec : undefined;
  const adaptive = snap.exists ? (snap.data()!.adaptiveJson as string | undefined) : undefined;
  return {
    ...(adaptive ? { adaptive: JSON.parse(adaptive) as AdaptiveRate } : {}),
    buckets: parse('bucketsJson'),
    requests: parse('requestsJson'),
    ...(cut ? { tokenCut: JSON.parse(cut) as TokenRateCut } : {}),
    ...(typeof rampFromSec === 'number' ? { rampFromSec } : {}),
  };
}
