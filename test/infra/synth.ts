/** Shared by the infra tests: synthesize the app once and find resources by what they are. */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createOpenClause, type OpenClauseProps } from '../../lib/openclause.js';
import { lambdaOf } from '../../functions/shared/constants.js';

export interface Synthesized {
  app: App;
  dataTemplate: Template;
  appTemplate: Template;
  /** The cloud assembly folder (bundled assets live under it). */
  assemblyDir: string;
}

export interface SynthOptions {
  /** Bundle the Lambdas with esbuild (seconds); without it, assets are placeholders. */
  bundle?: boolean;
  /** CDK's built-in CloudFormation schema validation (~5 s). */
  cloudFormationValidation?: boolean;
}

/** Builds and synthesizes the app; `configure` runs before synthesis (e.g. to add validation plugins). */
export function synthesize(
  props: OpenClauseProps = {},
  configure?: (app: App) => void,
  options: SynthOptions = {},
): Synthesized {
  const app = new App({
    // Inside the test run's folder (removed at its end), not a cdk.out* left in the temp dir.
    outdir: mkdtempSync(path.join(process.env.OC_TEST_TMP ?? os.tmpdir(), 'cdk.out-')),
    builtinCloudFormationValidation: options.cloudFormationValidation ?? false,
    context: options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] },
  });
  const stacks = createOpenClause(app, props);
  configure?.(app);
  const assembly = app.synth();
  return {
    app,
    dataTemplate: Template.fromStack(stacks.data),
    appTemplate: Template.fromStack(stacks.app),
    assemblyDir: assembly.directory,
  };
}

type Resource = { Type: string; Properties: Record<string, any>; [k: string]: unknown };

/** The Lambda built from functions/handlers/<handler>.ts (OcFunction describes itself by handler). */
export function lambdaFor(template: Template, handler: string): { id: string; resource: Resource } {
  // A handler grouped into another Lambda (ROUTE_LAMBDAS) is found as that Lambda.
  const found = Object.entries(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Description: `OpenClause ${lambdaOf(handler)}` },
    }),
  );
  if (found.length !== 1) throw new Error(`expected one Lambda for ${handler}, found ${found.length}`);
  const [id, resource] = found[0]!;
  return { id, resource: resource as Resource };
}

/** Every statement of every IAM policy attached to the given role logical id. */
export function statementsOfRole(template: Template, roleId: string): Array<Record<string, any>> {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<Record<string, any>>);
}

export function roleOf(fn: Resource): string {
  return (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

export const asArray = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** The folder of the zip asset a Lambda's code points at. */
export function assetDirOf(s: Synthesized, stackName: string, fn: Resource): string {
  const key = (fn.Properties.Code as { S3Key: string }).S3Key;
  const manifest = JSON.parse(readFileSync(path.join(s.assemblyDir, `${stackName}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string } }>;
  };
  const hash = key.replace(/\.zip$/, '');
  const entry = manifest.files[hash];
  if (!entry) throw new Error(`no asset ${hash} in ${stackName}.assets.json`);
  return path.join(s.assemblyDir, entry.source.path);
}
