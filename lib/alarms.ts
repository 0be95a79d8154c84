/**
 * Where alarms go. The data stack owns the alarm topic (its email subscriptions, once confirmed,
 * outlive any replacement of the app stack), or imports the one `alarmTopicArn` names; one aspect
 * per stack then makes every CloudWatch alarm in it notify that topic when raised and when back to
 * OK, so an alarm added later cannot be forgotten (test/infra/alarms.test.ts checks both templates).
 */
import { Aspects, Stack, Validations, type IAspect } from 'aws-cdk-lib';
import { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Subscription, SubscriptionProtocol, Topic, type ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct, type IConstruct } from 'constructs';

export interface AlarmTopicProps {
  /**
   * An existing SNS topic that alarms notify instead of a created one. If it is encrypted, its key
   * must let `cloudwatch.amazonaws.com` use it (kms:Decrypt, kms:GenerateDataKey*), and its policy
   * let CloudWatch publish.
   * @default - a topic is created
   */
  readonly topicArn?: string;
  /**
   * An email address subscribed to the topic (created or given). SNS mails it a confirmation link:
   * nothing is delivered until someone follows it.
   * @default - no subscription
   */
  readonly email?: string;
  /**
   * The customer-managed key that encrypts a created topic; its policy gains a statement letting
   * CloudWatch alarms of this account use it. Not the AWS-managed `alias/aws/sns`: its policy
   * cannot grant CloudWatch, which then drops every notification without a word.
   * @default - the topic is not encrypted at rest (the default `tableKey=aws-managed`: no customer key to use)
   */
  readonly encryptionKey?: IKey;
}

// Loose on purpose: SNS validates the address; this catches a value that is plainly not one.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The alarm topic: created (TLS only; encrypted with the customer table key if there is one) or
 * imported, with an optional email subscriber.
 */
export class AlarmTopic extends Construct {
  readonly topic: ITopic;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    if (props.email !== undefined && !EMAIL.test(props.email))
      throw new Error(`context alarmEmail must be an email address, got "${props.email}"`);
    this.topic = props.topicArn
      ? Topic.fromTopicArn(this, 'Topic', props.topicArn)
      : this.createTopic(props.encryptionKey);
    if (props.email)
      new Subscription(this, 'Email', {
        topic: this.topic,
        protocol: SubscriptionProtocol.EMAIL,
        endpoint: props.email,
      });
  }

  private createTopic(key: IKey | undefined): Topic {
    const { account, region } = Stack.of(this);
    // CloudWatch publishes as its service principal, for alarms of this account and region only.
    const fromOurAlarms = {
      StringEquals: { 'aws:SourceAccount': account },
      ArnLike: { 'aws:SourceArn': `arn:${Stack.of(this).partition}:cloudwatch:${region}:${account}:alarm:*` },
    };
    const topic = new Topic(this, 'Topic', {
      displayName: 'OpenClause alarms',
      ...(key ? { masterKey: key } : {}),
      enforceSSL: true,
    });
    if (!key)
      Validations.of(topic).acknowledge({
        id: 'AwsSolutions-SNS2',
        reason:
          'The default tableKey=aws-managed creates no customer key, and the AWS-managed aws/sns key cannot be granted to CloudWatch (alarms would be dropped); alarm messages name alarms and metrics, never a record. -c tableKey=customer encrypts the topic (docs/operators.md "Idle cost").',
      });
    topic.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: fromOurAlarms,
      }),
    );
    key?.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromOurAlarms,
      }),
    );
    return topic;
  }
}

/**
 * Adds the topic as alarm and OK action of every CloudWatch alarm it visits. The only place alarm
 * actions are wired: no construct adds its own (a second copy of an action is refused by CloudWatch).
 */
class NotifyTopic implements IAspect {
  constructor(private readonly topic: ITopic) {}

  visit(node: IConstruct): void {
    if (!(node instanceof Alarm)) return;
    const action = new SnsAction(this.topic);
    node.addAlarmAction(action);
    node.addOkAction(action);
  }
}

/** Every alarm in `scope`, now or added later, notifies `topic`. */
export function notifyOnEveryAlarm(scope: Construct, topic: ITopic): void {
  Aspects.of(scope).add(new NotifyTopic(topic));
}
