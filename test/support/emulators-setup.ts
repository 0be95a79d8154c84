/**
 * Starts DynamoDB Local, fauxqs and s3rver once per test run on free ports; workers read the
 * endpoints from the environment. Tests create their own tables, so they never share state.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startDynamoDbLocal, startS3, startSqs, type Emulator } from '../../bin/local/emulators.js';

declare global {
  var __OC_EMULATORS__: Emulator[] | undefined;
  /** Folders the run created; the global teardown removes them. */
  var __OC_TEMP_DIRS__: string[] | undefined;
}

export async function globalSetup(): Promise<void> {
  // One folder for everything this run writes to disk (S3 objects, cloud assemblies), removed by
  // the global teardown; workers find it in OC_TEST_TMP.
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'oc-test-run-'));
  process.env.OC_TEST_TMP = runDir;
  const s3Dir = path.join(runDir, 's3');
  const [dynamo, sqs, s3] = await Promise.all([
    startDynamoDbLocal({ port: await freePort() }),
    startSqs(await freePort()),
    startS3(await freePort(), s3Dir),
  ]);
  globalThis.__OC_EMULATORS__ = [dynamo, sqs, s3];
  globalThis.__OC_TEMP_DIRS__ = [runDir];
  process.env.OC_TEST_DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.OC_TEST_SQS_ENDPOINT = sqs.endpoint;
  process.env.OC_TEST_S3_ENDPOINT = s3.endpoint;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'local';
  process.env.AWS_SECRET_ACCESS_KEY = 'local';
  process.env.POWERTOOLS_DEV = 'true';
  // Node 20 is this machine's runtime; the lock file pins SDK versions that support it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_TRACE_ENABLED = 'false';
}
