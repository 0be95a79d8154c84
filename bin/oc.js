#!/usr/bin/env node
// The package's `oc` command: runs bin/oc.ts through tsx (a runtime dependency).
import { register } from 'tsx/esm/api';

register();
await import('./oc.ts');
