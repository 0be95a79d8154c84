#!/usr/bin/env node
// The package's `oc` command: runs bin/oc.ts through tsx (a runtime dependency).
import { register } from 'tsx/esm/api';

// Outside Lambda this variable is only ever set by a local host for its own process (see
// bin/local/host.ts); inherited from a parent that runs one (a test), it would make Powertools
// look for a Lambda runtime's invocation store that this process does not have.
if (!process.env.AWS_LAMBDA_FUNCTION_NAME) delete process.env.AWS_LAMBDA_MAX_CONCURRENCY;
register();
await import('./oc.ts');
