import { cloudEvent, http } from '@google-cloud/functions-framework';
import { LIMITS } from './core/requests.js';
import { createDeps, type Deps } from './deps.js';
import { createIngestHandler } from './ingest/index.js';
import { createIntakeHandler } from './intake/index.js';
import { installJsonBodyErrors } from './platform/body-errors.js';
import { loadConfig, requireGeminiKey } from './platform/config.js';
import { installNoDomains } from './platform/runtime.js';
import { createTickHandler } from './tick/index.js';
import { createWorkerHandler } from './worker/index.js';

/**
 * Registers the entry points by name (the names Terraform deploys). Clients are built lazily on the
 * first request of an instance, so importing this module has no side effect beyond registration.
 */
let deps: Deps | undefined;
const getDeps = (): Deps => {
  deps ??= createDeps(loadConfig(process.env));
  return deps;
};
/** Worker and tick call Gemini: without its key they fail on their first request, naming GEMINI_API_KEY. */
const getGeminiDeps = (): Deps => {
  const built = getDeps();
  requireGeminiKey(built.config);
  return built;
};

// Before the framework builds its server: a body it cannot parse gets a JSON error, not HTML, and
// no body is read past the jobs API's cap (on the wire and inflated).
installJsonBodyErrors(LIMITS.maxBodyBytes);
// No request is wrapped in a domain: its async hook would tax every promise (platform/runtime.ts).
installNoDomains();

http('ingest', createIngestHandler(getDeps));
http('worker', createWorkerHandler(getGeminiDeps));
http('tick', createTickHandler(getGeminiDeps));
cloudEvent('intake', createIntakeHandler(getDeps));
