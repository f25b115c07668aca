#!/usr/bin/env node
// The `gemini-fanout` command: runs the TypeScript CLI (./main.ts) in this process through tsx, which
// `npm ci` installs with the project.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
