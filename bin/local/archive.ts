/**
 * The archiver against the local stack: s3rver (path-style, its fixed credentials) and the signing
 * key file in the data folder. `npm start` runs it on a timer, `oc archive` once, tests and the
 * benchmark as they need.
 */
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ArchiveCheckpointStore } from '../../functions/store/archive-checkpoints.js';
import {
  Archiver,
  s3ArchiveObjects,
  type ArchiveEvents,
  type WitnessStep,
} from '../../functions/store/archiver.js';
import { FileCheckpointSigner } from '../../functions/store/checkpoint-signer.js';
import { S3RVER_CREDENTIALS } from './emulators.js';

/** The local signing key's file in a data folder. */
export const signingKeyFile = (dataDir: string) => path.join(dataDir, 'evidence-signing-key.pem');
/** Its public key, beside it: what an auditor pins (`oc verify --public-key`). */
export const publicKeyFile = (dataDir: string) => path.join(dataDir, 'evidence-public-key.pem');
/** The local witness's key (generated on first use) and the tlog-policy naming it and the log. */
export const witnessKeyFile = (dataDir: string) => path.join(dataDir, 'witness-key.pem');
export const tlogPolicyFile = (dataDir: string) => path.join(dataDir, 'tlog-policy.txt');

export function localS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
  });
}

export interface LocalArchiverOptions {
  doc: DynamoDBDocumentClient;
  table: string;
  s3: S3Client;
  bucket: string;
  keyFile: string;
  maxEntriesPerBundle?: number;
  events?: ArchiveEvents;
  /** Keep the Merkle log (default); off only for the benchmark's comparison. */
  log?: boolean;
  /** The witnesses each new log checkpoint is cosigned by (`npm start` runs one). */
  witness?: WitnessStep;
}

export function localArchiver(options: LocalArchiverOptions): {
  archiver: Archiver;
  signer: FileCheckpointSigner;
} {
  const signer = FileCheckpointSigner.open(options.keyFile);
  const archiver = new Archiver({
    store: new ArchiveCheckpointStore(options.doc, options.table),
    objects: s3ArchiveObjects(options.s3, options.bucket),
    signer,
    maxEntriesPerBundle: options.maxEntriesPerBundle,
    events: options.events,
    // The local log's origin is `local/t/<tenant>`, its key named `local`.
    deployment: 'local',
    ...(options.log === false ? { log: false } : {}),
    ...(options.witness ? { witness: options.witness } : {}),
  });
  return { archiver, signer };
}
