import { ENV, STACKS } from '../../functions/shared/constants.js';
import { lambdaFor, synthesize, type Synthesized } from './synth.js';

describe('stack props', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize({
      publicBaseUrl: 'https://gateway.example.com',
      rateLimitPerSec: 7,
      rateLimitBurst: 11,
      connectorsMode: 'mock',
      apiThrottle: { rateLimit: 50, burstLimit: 60 },
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:oc-alarms',
    });
  });

  it('hands publicBaseUrl, the rate limits and the connector mode to the route handlers', () => {
    const vars = lambdaFor(s.appTemplate, 'submit-toolcall').resource.Properties.Environment.Variables;
    expect(vars).toMatchObject({
      [ENV.publicBaseUrl]: 'https://gateway.example.com',
      [ENV.rateLimitPerSec]: '7',
      [ENV.rateLimitBurst]: '11',
      [ENV.connectorsMode]: 'mock',
    });
  });

  it('runs the connectors in the given mode', () => {
    expect(
      lambdaFor(s.appTemplate, 'connector-slack').resource.Properties.Environment.Variables[
        ENV.connectorsMode
      ],
    ).toBe('mock');
  });

  it('throttles the stage as told', () => {
    s.appTemplate.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 60 },
    });
  });

  it('notifies the alarm topic on every alarm, in and out', () => {
    const alarms = Object.values(s.appTemplate.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual(['arn:aws:sns:eu-west-1:123456789012:oc-alarms']);
      expect(alarm.Properties.OKActions).toEqual(['arn:aws:sns:eu-west-1:123456789012:oc-alarms']);
    }
  });

  it('keeps the stack names the CLI looks for', () => {
    expect(s.app.node.findChild(STACKS.data)).toBeDefined();
    expect(s.app.node.findChild(STACKS.app)).toBeDefined();
  });
});
