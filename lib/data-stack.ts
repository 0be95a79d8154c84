import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { STACKS } from '../functions/shared/constants.js';
import { AlarmTopic, notifyOnEveryAlarm } from './alarms.js';
import { Data, type DataProps } from './data.js';
import { EvidenceVault } from './evidence-archive.js';

export interface OcDataStackProps extends StackProps, DataProps {
  /**
   * SNS topic ARN that every alarm of both stacks notifies (context `alarmTopicArn`).
   * @default - the stack creates one (encrypted with the table key under `tableKey=customer`)
   */
  readonly alarmTopicArn?: string;
  /**
   * Email address subscribed to the alarm topic (context `alarmEmail`); it must confirm by mail.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
}

/**
 * The stateful part: the table and its key. It changes rarely and is never replaced with the
 * app; deleting the app stack leaves every fact and chain entry in place.
 */
export class OcDataStack extends Stack {
  readonly data: Data;
  /** The evidence archive's bucket, keys and auditor role (stateful, like the table). */
  readonly evidence: EvidenceVault;
  /** The topic every alarm of both stacks notifies (created, or `alarmTopicArn`). */
  readonly alarmTopic: ITopic;

  constructor(scope: Construct, id: string, props: OcDataStackProps = {}) {
    super(scope, id, {
      description: 'OpenClause gateway: table, key and evidence archive (stateful)',
      ...props,
    });
    this.data = new Data(this, 'Data', { tableName: props.tableName, tableKey: props.tableKey });
    new CfnOutput(this, STACKS.outputs.tableName, {
      value: this.data.table.tableName,
      description: 'The single DynamoDB table',
    });
    this.evidence = new EvidenceVault(this, 'Evidence', { encryptionKey: this.data.key });
    // Here, not in the app stack: confirmed subscriptions survive the app stack's replacement,
    // and a customer table key (already paid for) encrypts it.
    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      topicArn: props.alarmTopicArn,
      email: props.alarmEmail,
      encryptionKey: this.data.key,
    }).topic;
    notifyOnEveryAlarm(this, this.alarmTopic);
    new CfnOutput(this, STACKS.outputs.alarmTopic, {
      value: this.alarmTopic.topicArn,
      description: 'The SNS topic every alarm notifies (aws sns subscribe --topic-arn <this> ...)',
    });
    new CfnOutput(this, STACKS.outputs.evidenceBucket, {
      value: this.evidence.bucket.bucketName,
      description: 'The evidence archive (oc verify --aws --bucket <this> --tenant T --public-key K)',
    });
    new CfnOutput(this, STACKS.outputs.evidenceSigningKey, {
      value: this.evidence.signingKey.keyArn,
      description:
        'The Ed25519 checkpoint signing key (aws kms get-public-key --key-id <this> gives the public key to pin)',
    });
    new CfnOutput(this, STACKS.outputs.evidenceAuditorRole, {
      value: this.evidence.auditorRole.roleArn,
      description: 'Read-only role for auditors: the archive and the public key, nothing else',
    });
  }
}
