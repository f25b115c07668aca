/**
 * The `gemini-fanout` command (package.json `bin`, through ./bin.js). Ctrl-C stops a watch and leaves
 * the job running (exit 130); a second Ctrl-C exits at once.
 */
import { run } from './program.js';

const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort(new Error('interrupted'));
});

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
});
// Let stdout drain (a pipe may still hold the last lines), then leave, even if a socket lingers.
process.stdout.write('', () => process.exit(code));
