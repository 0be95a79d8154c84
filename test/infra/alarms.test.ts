/**
 * Alarms reach a person: every CloudWatch alarm of both stacks notifies the alarm topic (raised
 * and back to OK), which `cdk deploy` creates unless `alarmTopicArn` names one, and `alarmEmail`
 * subscribes an address to it.
 */
import type { Stack } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { Alarm, Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { STACKS } from '../../functions/shared/constants.js';
import { synthesize, type Synthesized } from './synth.js';

type Resource = { Type: string; Properties: Record<string, any> };

/** Every alarm of both templates, named by stack and logical id. */
function alarmsOf(s: Synthesized): Array<[string, Resource]> {
  const of = (stack: string, t: Template) =>
    Object.entries(t.findResources('AWS::CloudWatch::Alarm')).map(
      ([id, r]) => [`${stack}/${id}`, r as Resource] as [string, Resource],
    );
  return [...of('data', s.dataTemplate), ...of('app', s.appTemplate)];
}

/** The alarms whose AlarmActions or OKActions do not name `topic` (a CloudFormation value). */
function silentAlarms(s: Synthesized, topic: (stack: string) => unknown): string[] {
  return alarmsOf(s)
    .filter(([name, r]) => {
      const want = JSON.stringify([topic(name.split('/')[0]!)]);
      return (
        JSON.stringify(r.Properties.AlarmActions ?? []) !== want ||
        JSON.stringify(r.Properties.OKActions ?? []) !== want
      );
    })
    .map(([name]) => name);
}

describe('alarm notifications', () => {
  describe('by default', () => {
    let s: Synthesized;
    let topicId: string;
    beforeAll(() => {
      s = synthesize();
      const topics = Object.keys(s.dataTemplate.findResources('AWS::SNS::Topic'));
      expect(topics).toHaveLength(1);
      topicId = topics[0]!;
    });

    it('creates one alarm topic, in the data stack (its subscriptions outlive the app stack)', () => {
      s.appTemplate.resourceCountIs('AWS::SNS::Topic', 0);
      s.dataTemplate.resourceCountIs('AWS::SNS::Subscription', 0);
    });

    it('has alarms in the templates to check', () => {
      // One per failure mode (one for every Lambda's errors: test/infra/stacks.test.ts).
      expect(alarmsOf(s).length).toBeGreaterThanOrEqual(15);
    });

    it('makes every alarm of both stacks notify the topic, raised and back to OK', () => {
      const dataRef = { Ref: topicId };
      // The app stack names the topic through the data stack's export of it (a strong reference).
      const outputs = Object.values<any>(s.dataTemplate.toJSON().Outputs ?? {});
      const exported = outputs.find((o) => JSON.stringify(o.Value) === JSON.stringify(dataRef) && o.Export);
      const appRef = { 'Fn::ImportValue': exported?.Export.Name ?? 'no export of the alarm topic' };
      expect(silentAlarms(s, (stack) => (stack === 'data' ? dataRef : appRef))).toEqual([]);
    });

    it('leaves the topic without a key by default (CloudWatch cannot use aws/sns; the customer key: table-key.test.ts)', () => {
      const topic = s.dataTemplate.findResources('AWS::SNS::Topic')[topicId]!;
      expect(topic.Properties.KmsMasterKeyId).toBeUndefined();
    });

    it('accepts only TLS publishers and lets CloudWatch publish', () => {
      s.dataTemplate.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [{ Ref: topicId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
            Match.objectLike({
              Effect: 'Allow',
              Action: 'sns:Publish',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
            }),
          ]),
        },
      });
    });
  });

  it('makes an alarm added later, to either stack, notify the topic too', () => {
    const late = (stack: Stack, id: string) =>
      new Alarm(stack, id, {
        metric: new Metric({ namespace: 'Test', metricName: 'late' }),
        threshold: 1,
        evaluationPeriods: 1,
      });
    const s = synthesize({}, (app) => {
      late(app.node.findChild(STACKS.data) as Stack, 'LateDataAlarm');
      late(app.node.findChild(STACKS.app) as Stack, 'LateAppAlarm');
    });
    const topicRef = { Ref: Object.keys(s.dataTemplate.findResources('AWS::SNS::Topic'))[0]! };
    const data = Object.entries(s.dataTemplate.findResources('AWS::CloudWatch::Alarm'));
    expect(data.map(([id]) => id)).toEqual([expect.stringMatching(/^LateDataAlarm/)]);
    expect(data[0]![1].Properties).toMatchObject({ AlarmActions: [topicRef], OKActions: [topicRef] });
    const app = Object.entries(s.appTemplate.findResources('AWS::CloudWatch::Alarm')).find(([id]) =>
      id.startsWith('LateAppAlarm'),
    );
    expect(app![1].Properties.AlarmActions).toEqual([{ 'Fn::ImportValue': expect.any(String) }]);
    expect(app![1].Properties.OKActions).toEqual(app![1].Properties.AlarmActions);
  });

  describe('with -c alarmEmail', () => {
    it('subscribes the address to the topic', () => {
      const s = synthesize({ alarmEmail: 'ops@example.com' });
      const topicId = Object.keys(s.dataTemplate.findResources('AWS::SNS::Topic'))[0]!;
      s.dataTemplate.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        TopicArn: { Ref: topicId },
      });
    });

    it('refuses something that is not an address', () => {
      expect(() => synthesize({ alarmEmail: 'ops at example' })).toThrow(/alarmEmail/);
    });
  });

  describe('with -c alarmTopicArn', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:oc-alarms';
    let s: Synthesized;
    beforeAll(() => {
      s = synthesize({ alarmTopicArn: arn, alarmEmail: 'ops@example.com' });
    });

    it('creates no topic and makes every alarm of both stacks notify the given one', () => {
      s.dataTemplate.resourceCountIs('AWS::SNS::Topic', 0);
      s.appTemplate.resourceCountIs('AWS::SNS::Topic', 0);
      expect(silentAlarms(s, () => arn)).toEqual([]);
    });

    it('still subscribes the address, to the given topic', () => {
      s.dataTemplate.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        TopicArn: arn,
      });
    });
  });
});
