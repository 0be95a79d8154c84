import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks, type NagPack } from 'cdk-nag';
import { synthesize } from './synth.js';

describe('cdk-nag (AwsSolutions + Serverless)', () => {
  let packs: NagPack[];
  let synthError: unknown;
  let app: App;
  let assemblyDir: string;

  beforeAll(() => {
    try {
      ({ app, assemblyDir } = synthesize(
        {},
        (a) => {
          packs = [new AwsSolutionsChecks(a), new ServerlessChecks(a)];
          Validations.of(a).addPlugins(...packs);
        },
        { cloudFormationValidation: true },
      ));
    } catch (error) {
      synthError = error;
    }
  });

  const findings = (severity: string) =>
    packs.flatMap((pack) =>
      pack
        .validateScope(app)
        .violations.filter((v) => v.severity === severity)
        .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`)),
    );

  it('synthesizes with the packs registered (a violation would fail synthesis)', () => {
    expect(synthError).toBeUndefined();
  });

  it('reports no unacknowledged errors', () => {
    expect(findings('error')).toEqual([]);
  });

  it('reports no unacknowledged warnings either', () => {
    expect(findings('warning')).toEqual([]);
  });

  it('leaves the validation report empty (cdk-nag and the CloudFormation schema check)', () => {
    const report = JSON.parse(readFileSync(path.join(assemblyDir, 'validation-report.json'), 'utf8')) as {
      pluginReports: unknown[];
    };
    expect(report.pluginReports).toEqual([]);
  });

  it('gives every acknowledgement a specific reason', () => {
    const reasons = app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((m) => Object.entries(m.data as Record<string, string>));
    expect(reasons.length).toBeGreaterThan(0);
    for (const [id, reason] of reasons) {
      expect({ id, long: reason.length >= 40 }).toEqual({ id, long: true });
    }
  });
});
