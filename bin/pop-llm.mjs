#!/usr/bin/env node
// The `pop-llm` command: loads the TypeScript CLI through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../tools/cli/main.ts');
