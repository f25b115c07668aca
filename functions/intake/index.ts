import type { CloudEvent } from '@google-cloud/functions-framework';
import type { Deps } from '../deps.js';
import { intakeObject, type StorageObject } from './handler.js';

const FINALIZED = 'google.cloud.storage.object.v1.finalized';

/**
 * The Eventarc target for `google.cloud.storage.object.v1.finalized`. Returns to acknowledge;
 * throws (after logging) to have the event delivered again: a failed intake is retried, never lost.
 */
export function createIntakeHandler(getDeps: () => Deps) {
  return async (event: CloudEvent<StorageObject>): Promise<void> => {
    const deps = getDeps();
    // A trigger sends only the type it was made for; any other (metadataUpdated, deleted) is not a file to run.
    if (event.type !== FINALIZED) {
      deps.logger.info(
        { event: 'intake.ignored', type: event.type, id: event.id },
        'not a finalize event; ignored',
      );
      return;
    }
    const data = event.data;
    if (!data || typeof data.bucket !== 'string' || typeof data.name !== 'string') {
      deps.logger.warn({ event: 'intake.ignored', id: event.id }, 'an event without an object; ignored');
      return;
    }
    try {
      await intakeObject(data, {
        lifecycle: deps.lifecycle,
        objects: deps.objects,
        quotas: deps.config.quotas,
        logger: deps.logger.child({ eventId: event.id }),
        bucket: deps.config.bucket,
        mediaGcsAllowed: deps.config.mediaGcsAllowed,
        mediaGcsShared: deps.config.mediaGcsShared,
        bucketOwners: deps.config.bucketOwners,
        caps: deps.config.bucketCaps,
      });
    } catch (err) {
      deps.logger.error(
        { event: 'intake.failed', object: data.name, err: (err as Error).message },
        'intake failed; the event will be delivered again',
      );
      throw err;
    }
  };
}
