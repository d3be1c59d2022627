#!/usr/bin/env node
// Entry point of the `understudy` command. The sources are TypeScript run through tsx, so no
// build step is needed after `npm ci`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
