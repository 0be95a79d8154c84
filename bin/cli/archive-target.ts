/**
 * Which S3 the archive commands use: the local stack's s3rver (found as every command finds the
 * local stack), or with `--aws` S3 itself with the standard AWS credentials and region.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { localS3Client } from '../local/archive.js';
import { localEndpoint, resolveLocalTarget, type TargetOptions } from './target.js';

export interface ArchiveS3 {
  s3: S3Client;
  /** For messages: where S3 is. */
  where: string;
  /** The local stack's bucket and data folder (undefined with --aws). */
  local?: { bucket: string; dataDir: string };
}

export function archiveS3(opts: TargetOptions, env: NodeJS.ProcessEnv): ArchiveS3 {
  if (opts.aws) return { s3: new S3Client({}), where: 'S3' };
  const target = resolveLocalTarget(opts, env);
  const endpoint = localEndpoint(target, 's3');
  return {
    s3: localS3Client(endpoint),
    where: `S3 at ${endpoint}`,
    local: { bucket: target.bucket.value, dataDir: target.dataDir },
  };
}
