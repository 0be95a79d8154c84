/**
 * The CDK app: `npx cdk synth|deploy --all`. Settings come from context (`-c key=value` or cdk.json):
 * publicBaseUrl, rateLimitPerSec, rateLimitBurst, connectorsMode (live|mock), alarmTopicArn (default:
 * a topic the data stack creates), alarmEmail (subscribed to the alarm topic), errorAlarms
 * (account|per-function: one alarm on the account's Lambda errors, the default, or one per function),
 * secretStore (ssm|secretsmanager: where operators put credentials; default ssm), tableKey
 * (aws-managed|customer: the table's KMS key, the AWS-managed aws/dynamodb by default, or a
 * customer-managed one that also encrypts the archive and the alarm topic), and the
 * approvers' OIDC provider: approverIssuer, approverAudience, approverJwksUrl, approverTenantClaim,
 * and the web console's client of it: approverConsoleClientId (default: approverAudience),
 * approverConsoleScope, approverConsoleOrigins (comma-separated https origins, e.g. Cognito's hosted UI);
 * or approverUserPoolDomain (a hosted-UI domain prefix: a Cognito user pool created for approvers);
 * tracing (true|false, X-Ray on every Lambda; default false) and sourceMaps (true|false,
 * `--enable-source-maps` on every Lambda; default false); templateConnector (true|false, also deploy
 * the template connector; default false); upstreamVpc (`<vpc-id>/<subnet-id>,...`: the upstream MCP
 * connector runs in those subnets to reach private upstreams; default none); policyShadow (on|off: shadow mode for a candidate policy
 * in `policy/shadow/`, deployed beside the live one when the folder exists; default on); agents'
 * OAuth on /mcp (lib/mcp-oauth.ts, off by default): mcpOAuth=cognito (a Cognito user pool, resource
 * server and client-credentials clients; with mcpOAuthUserPoolId, mcpOAuthDomainPrefix,
 * mcpOAuthClients as a comma list of client names) or mcpOAuthIssuer (an external RFC 9068 issuer,
 * with mcpOAuthJwksUrl), and mcpOAuthScope (default mcp:tools); witnesses
 * (JSON `[{name,url,vkey}]`: the witnesses the archiver submits each checkpoint to). With context
 * witnessName (and witnessLogs) the app also has the witness stack `OcWitness`
 * (lib/witness-stack.ts), deployed apart: `cdk deploy OcWitness`, in production with another
 * account's profile.
 */
import { rmSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { CONNECTORS_MODES, type ConnectorsMode } from '../functions/shared/constants.js';
import { compiledPolicyDirs, compiledPolicyFile } from '../lib/function.js';
import { SECRET_STORES, type SecretStore } from '../lib/credentials.js';
import { TABLE_KEYS, type TableKey } from '../lib/data.js';
import { ERROR_ALARMS, type ErrorAlarms } from '../lib/observability.js';
import { createOpenClause } from '../lib/openclause.js';
import { parseUpstreamVpc } from '../lib/upstream-connector.js';
import { OcWitnessStack, WITNESS_CONTEXT, WITNESS_STACK } from '../lib/witness-stack.js';

const app = new App();

const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return value === undefined || value === null || value === '' ? undefined : String(value);
};
const positiveInt = (key: string): number | undefined => {
  const raw = context(key);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`context ${key} must be a positive integer, got "${raw}"`);
  return n;
};
const connectorsMode = (): ConnectorsMode | undefined => {
  const raw = context('connectorsMode');
  if (raw === undefined) return undefined;
  if (!(CONNECTORS_MODES as readonly string[]).includes(raw)) {
    throw new Error(`context connectorsMode must be one of ${CONNECTORS_MODES.join(', ')}, got "${raw}"`);
  }
  return raw as ConnectorsMode;
};

/** `-c policyShadow=off` (or `on`, the default): shadow mode for a `policy/shadow/` folder. */
const onOff = (key: string): boolean | undefined => {
  const raw = context(key);
  if (raw === undefined) return undefined;
  if (raw !== 'on' && raw !== 'off') throw new Error(`context ${key} must be on or off, got "${raw}"`);
  return raw === 'on';
};

/** `-c mcpOAuth=cognito`: agents' OAuth on /mcp through a Cognito user pool (lib/mcp-oauth.ts). */
const mcpOAuth = (): 'cognito' | undefined => {
  const raw = context('mcpOAuth');
  if (raw === undefined) return undefined;
  if (raw !== 'cognito') throw new Error(`context mcpOAuth must be cognito, got "${raw}"`);
  return raw;
};

/** `-c errorAlarms=per-function`: one Lambda error alarm per function instead of the account's one. */
const errorAlarms = (): ErrorAlarms | undefined => {
  const raw = context('errorAlarms');
  if (raw === undefined) return undefined;
  if (!(ERROR_ALARMS as readonly string[]).includes(raw))
    throw new Error(`context errorAlarms must be one of ${ERROR_ALARMS.join(', ')}, got "${raw}"`);
  return raw as ErrorAlarms;
};

/** `-c secretStore=secretsmanager`: credentials in Secrets Manager instead of SSM SecureStrings. */
const secretStore = (): SecretStore | undefined => {
  const raw = context('secretStore');
  if (raw === undefined) return undefined;
  if (!(SECRET_STORES as readonly string[]).includes(raw))
    throw new Error(`context secretStore must be one of ${SECRET_STORES.join(', ')}, got "${raw}"`);
  return raw as SecretStore;
};

/** `-c tableKey=customer`: a customer-managed key instead of the AWS-managed aws/dynamodb. */
const tableKey = (): TableKey | undefined => {
  const raw = context('tableKey');
  if (raw === undefined) return undefined;
  if (!(TABLE_KEYS as readonly string[]).includes(raw))
    throw new Error(`context tableKey must be one of ${TABLE_KEYS.join(', ')}, got "${raw}"`);
  return raw as TableKey;
};

const bool = (key: string): boolean | undefined => {
  const raw = context(key);
  if (raw === undefined) return undefined;
  if (raw !== 'true' && raw !== 'false')
    throw new Error(`context ${key} must be true or false, got "${raw}"`);
  return raw === 'true';
};

// The policy folder every deciding Lambda packages is validated and compiled here, once: an
// invalid policy fails `cdk synth`, and the Lambdas load the compilation instead of parsing.
// The compilation is a temporary file: it goes when the process exits, after synthesis (which the
// App runs on beforeExit) has copied it into every bundle.
// A shadow candidate (`policy/shadow/`, issue 24) is compiled the same way when the app stack takes it.
compiledPolicyFile();
process.once('exit', () => {
  for (const dir of compiledPolicyDirs()) rmSync(dir, { recursive: true, force: true });
});

createOpenClause(app, {
  publicBaseUrl: context('publicBaseUrl'),
  rateLimitPerSec: positiveInt('rateLimitPerSec'),
  rateLimitBurst: positiveInt('rateLimitBurst'),
  connectorsMode: connectorsMode(),
  templateConnector: bool('templateConnector'),
  upstreamVpc: parseUpstreamVpc(context('upstreamVpc')),
  alarmTopicArn: context('alarmTopicArn'),
  alarmEmail: context('alarmEmail'),
  errorAlarms: errorAlarms(),
  secretStore: secretStore(),
  tableKey: tableKey(),
  approverIssuer: context('approverIssuer'),
  approverAudience: context('approverAudience'),
  approverJwksUrl: context('approverJwksUrl'),
  approverTenantClaim: context('approverTenantClaim'),
  approverConsoleClientId: context('approverConsoleClientId'),
  approverUserPoolDomain: context('approverUserPoolDomain'),
  approverConsoleScope: context('approverConsoleScope'),
  approverConsoleOrigins: context('approverConsoleOrigins')
    ?.split(',')
    .map((o) => o.trim())
    .filter(Boolean),
  tracing: bool('tracing'),
  sourceMaps: bool('sourceMaps'),
  policyShadow: onOff('policyShadow'),
  mcpOAuth: mcpOAuth(),
  mcpOAuthUserPoolId: context('mcpOAuthUserPoolId'),
  mcpOAuthDomainPrefix: context('mcpOAuthDomainPrefix'),
  mcpOAuthClients: context('mcpOAuthClients')
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean),
  mcpOAuthIssuer: context('mcpOAuthIssuer'),
  mcpOAuthJwksUrl: context('mcpOAuthJwksUrl'),
  mcpOAuthScope: context('mcpOAuthScope'),
});

if (context(WITNESS_CONTEXT.name) !== undefined) new OcWitnessStack(app, WITNESS_STACK);

// Synthesis fails on any unacknowledged cdk-nag error; acknowledgements sit next to their resources.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
