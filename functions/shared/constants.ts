/**
 * The one module that names tables, keys, routes, queues and environment variables.
 * CDK (`lib/`), the Lambda runtime and the local host all import it, so they cannot drift.
 */

/**
 * Every kind of evidence fact, in one registry: the evidence types (`core/evidence.ts`), where the
 * store files each kind, `api/openapi.yaml`'s `FactKind` enum and the SDK's generated types all
 * follow it, and a contract test fails if any of them drifts. A new kind (votes, edits,
 * withdrawals) is added here first.
 */
export const FACT_KINDS = [
  'toolcall.decided',
  'toolcall.executed',
  'approval.decided',
  'approval.expired',
  'execution.started',
  'execution.completed',
  'approval.revoked_by_policy',
  'approval.withdrawn',
  'approval.edited',
  // Issue 21: one approve vote of a quorum, and its withdrawal before its stage completed.
  'approval.vote',
  'approval.vote_withdrawn',
  // Issue 21 (5, 6): an approver moved a pending deadline; a standing grant was revoked.
  'approval.extended',
  'standing_grant.revoked',
  // Issue 25: an upstream tool's listing changed from its pinned hash (disabled), and an
  // operator's `oc upstream accept` of the change. Not bound to a tool call: each is the one fact
  // of its own event (an id derived from the tenant, server, tool and hash).
  'upstream.drift',
  'upstream.accepted',
] as const;
export type FactKind = (typeof FACT_KINDS)[number];

/**
 * The facts an approval's read lists (`GET /v1/approvals/{id}` `facts[].kind`, the contract's
 * `ApprovalFact.kind`): the decision that asked for it, what a human or the sweep did with it,
 * and the execution that spent its grant.
 */
export const APPROVAL_FACT_KINDS = [
  'toolcall.decided',
  'approval.decided',
  'approval.expired',
  'execution.started',
  'approval.revoked_by_policy',
  'approval.withdrawn',
  'approval.edited',
  'approval.vote',
  'approval.vote_withdrawn',
  'approval.extended',
] as const satisfies readonly FactKind[];
export type ApprovalFactKind = (typeof APPROVAL_FACT_KINDS)[number];

/**
 * An approval request's states (as read: a pending one past its expiry reads `expired`).
 * `revoked_by_policy`: approved, but the policy changed before the grant was used and the live
 * policy refused it at execute (`core/execute.ts`); its grant can never run.
 * `withdrawn`: the agent withdrew it while it was pending (`POST /v1/toolcalls/{id}/withdraw`, or
 * MCP `tasks/cancel`); nobody can decide it and nothing can execute it afterwards.
 */
export const APPROVAL_STATES = [
  'pending',
  'approved',
  'denied',
  'expired',
  'revoked_by_policy',
  'withdrawn',
] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/**
 * The end states of an approval request, ONE list shared by the approvals core, MCP (task status)
 * and policy code: once an approval reads one of these nothing can change it but an execute-time
 * revocation (`approved` -> `revoked_by_policy`). `expired` is its own end, never a denial: every
 * surface shows it as "expired" (nobody decided), not "denied".
 */
export const APPROVAL_END_STATES = [
  'approved',
  'denied',
  'expired',
  'revoked_by_policy',
  'withdrawn',
] as const satisfies readonly ApprovalState[];
export type ApprovalEndState = (typeof APPROVAL_END_STATES)[number];
export const isApprovalEndState = (status: string): status is ApprovalEndState =>
  (APPROVAL_END_STATES as readonly string[]).includes(status);

/** A standing grant's states (issue 21 deliverable 6): `active` until used up, expired or revoked. */
export const STANDING_GRANT_STATES = ['active', 'exhausted', 'expired', 'revoked'] as const;
export type StandingGrantState = (typeof STANDING_GRANT_STATES)[number];

/** Environment variable names, shared by CDK and runtime. */
export const ENV = {
  tableName: 'OC_TABLE_NAME',
  policyDir: 'OC_POLICY_DIR',
  /** Set by CDK: `cdk synth` validated the packaged policy folder, so the cold start need not. */
  policyValidatedAtBuild: 'OC_POLICY_VALIDATED_AT_BUILD',
  /**
   * Shadow mode (issue 24): the candidate policy folder. Set by CDK on the deciding functions when
   * `policy/shadow/` is deployed; locally it defaults to `<policy dir>/shadow` when that exists.
   */
  policyShadowDir: 'OC_POLICY_SHADOW_DIR',
  /** `off` turns shadow mode off whatever folder is there (the local stack's switch). */
  policyShadow: 'OC_POLICY_SHADOW',
  connectorsMode: 'OC_CONNECTORS_MODE',
  connectorFunctions: 'OC_CONNECTOR_FUNCTIONS',
  /**
   * `true` on the upstream MCP connector only when it runs in the operator's VPC
   * (`-c upstreamVpc=...`): http and private addresses allowed for upstreams (issue 25).
   */
  upstreamAllowPrivate: 'OC_UPSTREAM_ALLOW_PRIVATE',
  publicBaseUrl: 'OC_PUBLIC_BASE_URL',
  rateLimitPerSec: 'OC_RATE_LIMIT_PER_SEC',
  rateLimitBurst: 'OC_RATE_LIMIT_BURST',
  connectorTimeoutMs: 'OC_CONNECTOR_TIMEOUT_MS',
  dynamodbEndpoint: 'OC_DYNAMODB_ENDPOINT',
  slackBotToken: 'SLACK_BOT_TOKEN',
  jiraBaseUrl: 'JIRA_BASE_URL',
  jiraEmail: 'JIRA_EMAIL',
  jiraApiToken: 'JIRA_API_TOKEN',
  /** ARN of the Slack connector's Secrets Manager secret, JSON `{"bot_token"}` (set by CDK). */
  slackSecretArn: 'OC_SLACK_SECRET_ARN',
  /** ARN of the Jira connector's Secrets Manager secret, JSON `{"base_url","email","api_token"}` (set by CDK). */
  jiraSecretArn: 'OC_JIRA_SECRET_ARN',
  /** ARN of the template connector's secret, JSON `{"base_url","api_token"}` (set by CDK). */
  templateSecretArn: 'OC_TEMPLATE_SECRET_ARN',
  /** Approver JWTs: `dev` (HS256, local only), `oidc` (issuer + JWKS) or `none` (every token refused). */
  jwtMode: 'OC_JWT_MODE',
  devJwtSecret: 'OC_DEV_JWT_SECRET',
  jwtIssuer: 'OC_JWT_ISSUER',
  jwtAudience: 'OC_JWT_AUDIENCE',
  jwtJwksUrl: 'OC_JWT_JWKS_URL',
  jwtTenantClaim: 'OC_JWT_TENANT_CLAIM',
  sweepIntervalSec: 'OC_SWEEP_INTERVAL_SEC',
  /** The evidence archive (SPEC §8): bucket, the S3 endpoint (local only) and the checkpoint signer. */
  evidenceBucket: 'OC_EVIDENCE_BUCKET',
  s3Endpoint: 'OC_S3_ENDPOINT',
  evidenceKmsKeyId: 'OC_EVIDENCE_KMS_KEY_ID',
  evidenceSigningKeyFile: 'OC_EVIDENCE_SIGNING_KEY_FILE',
  /**
   * The MCP state key ring (signed session ids and requestStates, `store/mcp-state-keys.ts`): in
   * AWS an SSM SecureString parameter's name (set by CDK), locally a generated file.
   */
  mcpStateKeyParameter: 'OC_MCP_STATE_KEY_PARAMETER',
  mcpStateKeyFile: 'OC_MCP_STATE_KEY_FILE',
  /**
   * OAuth for agents on `/mcp` (RFC 9728 / 9068 / 8707): the authorization servers whose access
   * tokens `/mcp` accepts, comma-separated issuer URLs (none: API keys only), optionally
   * `<issuer>|<jwks_uri>` when the keys are not at `<issuer>/.well-known/jwks.json`; and the scope
   * a token must carry.
   */
  mcpOAuthIssuers: 'OC_MCP_OAUTH_ISSUERS',
  /**
   * Issuers (same list format) that are Amazon Cognito user pools, verified under the Cognito
   * profile (`store/agent-tokens.ts`): their client-credentials tokens carry neither `typ: at+jwt`
   * nor `aud`, so the audience is bound by the resource server's scopes instead.
   */
  mcpOAuthCognitoIssuers: 'OC_MCP_OAUTH_COGNITO_ISSUERS',
  mcpOAuthScope: 'OC_MCP_OAUTH_SCOPE',
  archiveIntervalSec: 'OC_ARCHIVE_INTERVAL_SEC',
  /** Set by CDK: seconds an archiver run may start bundles for (its timeout, less a margin). */
  archiveRunBudgetSec: 'OC_ARCHIVE_RUN_BUDGET_SEC',
  /** Notifications (SPEC §5): the delivery queue and its DLQ (set by CDK; created by the local host). */
  notifyQueueUrl: 'OC_NOTIFY_QUEUE_URL',
  notifyDlqUrl: 'OC_NOTIFY_DLQ_URL',
  /** The SQS endpoint (fauxqs locally); unset in AWS. */
  sqsEndpoint: 'OC_SQS_ENDPOINT',
  /** `source` of every CloudEvent. */
  eventSource: 'OC_EVENT_SOURCE',
  /** Locally: webhook secrets by `secret_ref`, `ref=whsec_...,ref2=whsec_...`. */
  webhookSecrets: 'OC_WEBHOOK_SECRETS',
  /** In AWS: Secrets Manager name prefix of the webhook secrets (`<prefix><secret_ref>`). */
  webhookSecretPrefix: 'OC_WEBHOOK_SECRET_PREFIX',
  /** `true` (local demos and tests only, never in CDK): http and loopback/private webhook addresses allowed. */
  allowPrivateWebhooks: 'OC_ALLOW_PRIVATE_WEBHOOKS',
  /** Per-attempt webhook timeout (default 10 s). */
  webhookTimeoutMs: 'OC_WEBHOOK_TIMEOUT_MS',
  /** Backoff of failed deliveries: first ceiling and cap, in seconds (full jitter below the ceiling). */
  webhookRetryBaseSec: 'OC_WEBHOOK_RETRY_BASE_SEC',
  webhookRetryCapSec: 'OC_WEBHOOK_RETRY_CAP_SEC',
  /** A module whose default export is a `Summarizer` (the extension hook of SPEC §5). */
  summarizer: 'OC_SUMMARIZER',
  /** The web console's built files (index.html, assets/): in the console Lambda's bundle, a build folder locally. */
  consoleDir: 'OC_CONSOLE_DIR',
  /** The console's OIDC client id (authorization code + PKCE); default: the approver audience. */
  consoleClientId: 'OC_CONSOLE_CLIENT_ID',
  /** Scopes the console asks the OIDC provider for. */
  consoleScope: 'OC_CONSOLE_SCOPE',
  /** More origins the console may call besides its own and the issuer's (e.g. Cognito's hosted-UI domain). */
  consoleConnectOrigins: 'OC_CONSOLE_CONNECT_ORIGINS',
  /** Slack's signing secret, locally (SPEC §9; default `dev-slack-signing-secret`). */
  slackSigningSecret: 'SLACK_SIGNING_SECRET',
  /** ARN of the Secrets Manager secret holding Slack's signing secret, JSON `{"signing_secret"}` (set by CDK). */
  slackSigningSecretArn: 'OC_SLACK_SIGNING_SECRET_ARN',
  /** Base URL of the Slack Web API (tests point it at a loopback server). @default https://slack.com/api/ */
  slackApiUrl: 'OC_SLACK_API_URL',
} as const;

/**
 * Witnesses (issue 23, C2SP tlog-witness). The witness's own Lambda (lib/witness-stack.ts) reads
 * WITNESS_ENV; the archiver reads `witnesses`: the witnesses it submits each new checkpoint to,
 * JSON `[{ "name", "url", "vkey" }]` (CDK context `witnesses`; the local stack sets its own).
 */
export const WITNESS_ENV = {
  table: 'OC_WITNESS_TABLE',
  name: 'OC_WITNESS_NAME',
  kmsKeyId: 'OC_WITNESS_KMS_KEY_ID',
  /** Locally: the witness's key file (generated on first use). */
  keyFile: 'OC_WITNESS_KEY_FILE',
  /** The logs it follows: `<deployment>/t/=<base64 Ed25519 key>`, comma separated. */
  logs: 'OC_WITNESS_LOGS',
  /** The archiver's side: the witnesses to submit to (JSON). */
  witnesses: 'OC_WITNESSES',
} as const;

/**
 * Longest accepted approver-token lifetime (`exp - iat`) and age (`now - iat`): IdP tokens live
 * 1 h by default and 1 day at most (Cognito's cap); a token valid until 9999 is a forgery or a leak.
 */
export const MAX_APPROVER_TOKEN_LIFETIME_SEC = 24 * 3600;

/** Local dev approver tokens (SPEC §4): HS256 with OC_DEV_JWT_SECRET. */
export const DEV_JWT = {
  issuer: 'oc-local',
  audience: 'oc-approvals',
  defaultSecret: 'dev-jwt-secret',
} as const;

/** The single DynamoDB table: generic keys, one GSI for listings, TTL attribute, stream NEW_IMAGE. */
export const TABLE = {
  defaultName: 'oc-main',
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1: {
    name: 'gsi1',
    partitionKey: 'gsi1pk',
    sortKey: 'gsi1sk',
    /**
     * Only what the approval listings read. Facts have no index entry (no write units spent on
     * one); `oc verify` finds unsealed facts with a filtered scan.
     */
    projectedAttributes: [
      'approval',
      'status',
      'decided_by',
      'decided_at',
      'comment',
      'deny_reason',
      'grant',
      'expires_at',
      'created_at',
    ],
  },
  ttlAttribute: 'ttl',
  /** Attribute that names an item's type; stream consumers filter on it. */
  typeAttribute: 'type',
} as const;

/** Item types (value of the `type` attribute). */
export const ITEM_TYPE = {
  apiKey: 'api_key',
  event: 'event',
  fact: 'fact',
  chainPage: 'chain_page',
  /** Where a tenant's chain stopped at a fact that cannot be sealed (at the page key it would take). */
  chainHold: 'chain_hold',
  /** A fact waiting behind a held chain. */
  chainParked: 'chain_parked',
  /** One per event partition: where the sequencer marks the event's facts sealed. */
  seal: 'seal',
  approval: 'approval',
  /** One approver's vote on a quorum approval, in the approval's partition (issue 21). */
  approvalVote: 'approval_vote',
  rateLimit: 'rate_limit',
  streamCursor: 'stream_cursor',
  grant: 'grant',
  execution: 'execution',
  tenant: 'tenant',
  /** A tenant whose chain has begun (registered with its first page; the archiver's list). */
  chainTenant: 'chain_tenant',
  /** How far a tenant's chain is archived to S3, and the range an archiver has claimed. */
  archiveCheckpoint: 'archive_checkpoint',
  /** One notification of one approval event to one route (in the approval's partition). */
  delivery: 'delivery',
  /** A Slack request signature already acted on (replay protection, expires with TTL). */
  slackReplay: 'slack_replay',
  /** A stream record or queue message a consumer could not process, parked in its tenant's partition. */
  parkedRecord: 'parked_record',
  /**
   * A pending approval's reminder, due at its sort key's time (issue 21 deliverable 5): a sparse
   * partition the expiry sweep reads with one Query per run, whatever the number of tenants.
   */
  reminder: 'reminder',
  /** A standing grant (issue 21 deliverable 6), in its tenant's grant partition. */
  standingGrant: 'standing_grant',
} as const;

/**
 * The consumers that park a record they cannot process (functions/store/parked-records.ts) instead
 * of failing the batch that every tenant shares; `release-parked` retries them with backoff (the
 * archiver retries its own on its schedule). The sequencer's chain holds are the same idea for facts.
 */
export const PARKING_CONSUMERS = ['outbox', 'deliver-notifications', 'archive-evidence'] as const;
export type ParkingConsumer = (typeof PARKING_CONSUMERS)[number];

/** The one metric (no dimension per consumer) and alarm for parked records and held chains. */
export const RECORDS_PARKED_METRIC = 'RecordsParked';

/**
 * Shadow mode's metrics (issue 24), EMF only: no alarm and no dashboard widget (idle cost stays
 * nil). One metric with the transition (`allow->deny`, …) as its dimension, and the errors.
 */
export const SHADOW_METRICS = {
  diff: 'ShadowDiff',
  transitionDimension: 'Transition',
  errors: 'ShadowErrors',
} as const;

/** Connector Lambdas by tool name, deployed by every stack. */
export const CONNECTORS = ['slack', 'jira'] as const;
/**
 * Connectors deployed only when asked (`-c templateConnector=true`): the template connector, which
 * a newcomer copies. Its Lambda, secret, alarm and dashboard widgets would otherwise add about
 * $3.50 a month to every idle stack (its dashboard metrics pass the free tier's 50).
 */
export const OPTIONAL_CONNECTORS = ['template'] as const;
export type ConnectorName = (typeof CONNECTORS)[number] | (typeof OPTIONAL_CONNECTORS)[number];

/** The variable carrying each connector's secret ARN; only that connector's Lambda gets it. */
export const CONNECTOR_SECRET_ENV: Readonly<Record<ConnectorName, string>> = {
  slack: ENV.slackSecretArn,
  jira: ENV.jiraSecretArn,
  template: ENV.templateSecretArn,
};

/**
 * api_key: agents (X-API-Key / Bearer key); jwt: human approvers (Bearer JWT); api_key_or_jwt:
 * either (reads an auditor may ask an agent or an approver for); none: public.
 */
export type RouteAuth = 'api_key' | 'jwt' | 'api_key_or_jwt' | 'api_key_or_oauth' | 'none';

export interface RouteDef {
  /** Lambda / handler module name under functions/handlers. */
  readonly handler: string;
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** API Gateway HTTP API path syntax. */
  readonly path: string;
  readonly auth: RouteAuth;
}

/** HTTP API routes: one Lambda per route. */
export const ROUTES: readonly RouteDef[] = [
  { handler: 'submit-toolcall', method: 'POST', path: '/v1/toolcalls', auth: 'api_key' },
  { handler: 'get-toolcall', method: 'GET', path: '/v1/toolcalls/{event_id}', auth: 'api_key' },
  { handler: 'execute-toolcall', method: 'POST', path: '/v1/toolcalls/{event_id}/execute', auth: 'api_key' },
  {
    handler: 'withdraw-toolcall',
    method: 'POST',
    path: '/v1/toolcalls/{event_id}/withdraw',
    auth: 'api_key',
  },
  {
    handler: 'get-toolcall-proof',
    method: 'GET',
    path: '/v1/toolcalls/{event_id}/proof',
    auth: 'api_key_or_jwt',
  },
  { handler: 'list-approvals', method: 'GET', path: '/v1/approvals', auth: 'jwt' },
  { handler: 'batch-approvals', method: 'POST', path: '/v1/approvals/batch', auth: 'jwt' },
  { handler: 'get-approval', method: 'GET', path: '/v1/approvals/{approval_id}', auth: 'jwt' },
  { handler: 'approve-approval', method: 'POST', path: '/v1/approvals/{approval_id}/approve', auth: 'jwt' },
  { handler: 'deny-approval', method: 'POST', path: '/v1/approvals/{approval_id}/deny', auth: 'jwt' },
  { handler: 'edit-approval', method: 'POST', path: '/v1/approvals/{approval_id}/edit', auth: 'jwt' },
  // An approver takes back their quorum vote (issue 21): the approve Lambda's own route, no new function.
  {
    handler: 'approve-approval',
    method: 'POST',
    path: '/v1/approvals/{approval_id}/withdraw-vote',
    auth: 'jwt',
  },
  {
    handler: 'get-approval-deliveries',
    method: 'GET',
    path: '/v1/approvals/{approval_id}/deliveries',
    auth: 'jwt',
  },
  // Issue 21: an approver moves a pending deadline (5); approves "this and calls like it" (6).
  { handler: 'extend-approval', method: 'POST', path: '/v1/approvals/{approval_id}/extend', auth: 'jwt' },
  {
    handler: 'create-standing-grant',
    method: 'POST',
    path: '/v1/approvals/{approval_id}/standing-grant',
    auth: 'jwt',
  },
  { handler: 'list-grants', method: 'GET', path: '/v1/grants', auth: 'jwt' },
  { handler: 'get-grant', method: 'GET', path: '/v1/grants/{grant_id}', auth: 'jwt' },
  { handler: 'revoke-grant', method: 'POST', path: '/v1/grants/{grant_id}/revoke', auth: 'jwt' },
  // MCP (Streamable HTTP, stateless): POST carries every message; GET (a server stream) and
  // DELETE (ending a session) answer 405, which MCP clients take as "not offered".
  // An agent there holds an API key or an OAuth access token (RFC 9068) from a configured issuer.
  { handler: 'mcp', method: 'POST', path: '/mcp', auth: 'api_key_or_oauth' },
  { handler: 'mcp', method: 'GET', path: '/mcp', auth: 'api_key_or_oauth' },
  { handler: 'mcp', method: 'DELETE', path: '/mcp', auth: 'api_key_or_oauth' },
  // RFC 9728 protected resource metadata for `/mcp` (how an MCP client finds the issuer): public.
  { handler: 'mcp', method: 'GET', path: '/.well-known/oauth-protected-resource/mcp', auth: 'none' },
  // The web console: static files and its settings, public (it signs the approver in itself).
  { handler: 'console', method: 'GET', path: '/console', auth: 'none' },
  { handler: 'console', method: 'GET', path: '/console/{path+}', auth: 'none' },
];

/**
 * Route handlers deployed together in one Lambda (which dispatches on the route key), by the
 * Lambda's name; every other handler is its own Lambda. Issue 21's extension and standing-grant
 * routes are rare approver actions: one Lambda for the five keeps the idle cost to one error alarm
 * (five Lambdas would add five alarms and push the dashboard past CloudWatch's free 50 metrics).
 */
export const ROUTE_LAMBDAS: Readonly<Record<string, string>> = {
  'extend-approval': 'approval-workflows',
  'create-standing-grant': 'approval-workflows',
  'list-grants': 'approval-workflows',
  'get-grant': 'approval-workflows',
  'revoke-grant': 'approval-workflows',
};
/** The Lambda that serves a handler (its own, unless ROUTE_LAMBDAS groups it). */
export const lambdaOf = (handler: string): string => ROUTE_LAMBDAS[handler] ?? handler;

/**
 * Functions reached outside the HTTP API: a Lambda Function URL each in AWS (auth NONE, the
 * handler verifies its caller), the same path on the local host.
 */
export const FUNCTION_URLS: readonly RouteDef[] = [
  { handler: 'slack-interactions', method: 'POST', path: '/slack/interactions', auth: 'none' },
];

/** Slack interactivity (SPEC §9). */
export const SLACK = {
  defaultSigningSecret: 'dev-slack-signing-secret',
  /** Slack's own window for a request timestamp, either direction. */
  signatureWindowSec: 300,
  /** Action ids of the approval message's buttons. */
  approveActionId: 'oc_approve',
  denyActionId: 'oc_deny',
  openActionId: 'oc_open',
  /** Issue 21 from Slack: more time on a pending request, and "approve this and calls like it". */
  extendActionId: 'oc_extend',
  grantActionId: 'oc_grant',
} as const;

/** Scheduled Lambdas (EventBridge in AWS, a timer in the local host). */
export const SCHEDULES = [
  { handler: 'expire-approvals', rateMinutes: 1 },
  { handler: 'release-parked', rateMinutes: 1 },
] as const;

/**
 * The evidence archiver: scheduled like SCHEDULES, but its rate comes from CDK context
 * (`archiveRateMinutes`) and locally from OC_ARCHIVE_INTERVAL_SEC.
 */
export const ARCHIVER = { handler: 'archive-evidence', defaultRateMinutes: 5 } as const;

/** The `type` of an upstream drift's record (store/upstreams.ts), which the outbox announces. */
export const UPSTREAM_DRIFT_ITEM_TYPE = 'upstream-drift';

/** Stream consumers: handler and the event-source filter (DynamoDB Streams filter pattern). */
export const STREAM_CONSUMERS = [
  {
    handler: 'sequencer',
    // Every item that carries a fact (a `record`): event items with their decision, fact items.
    filter: { eventName: ['INSERT'], dynamodb: { NewImage: { record: { S: [{ exists: true }] } } } },
    batchSize: 100,
  },
  {
    handler: 'outbox',
    // Approval items only: INSERT = requested, MODIFY = decided or expired (the handler reads the
    // status; the stream has only NEW_IMAGE, and a repeated MODIFY is harmless: delivery ids are stable).
    // Also an upstream drift's record (issue 25; written once per new listing): announced the same way.
    filter: {
      eventName: ['INSERT', 'MODIFY'],
      dynamodb: { NewImage: { type: { S: ['approval', UPSTREAM_DRIFT_ITEM_TYPE] } } },
    },
    batchSize: 50,
  },
] as const;

/**
 * The local demo's webhook secret (`npm start` defaults OC_WEBHOOK_SECRETS to it for the demo
 * tenant's `secret_ref`; `oc webhooks listen` verifies with it unless told another). Public, like
 * the dev JWT secret: never a deployed secret.
 */
export const DEV_WEBHOOK = {
  secretRef: 'tenant1_webhook',
  secret: 'whsec_b2MtbG9jYWwtZGV2LXdlYmhvb2stc2VjcmV0LXYxISE=',
  port: 8090,
} as const;

/** The approval notification queue (SPEC §5): one message per (approval event, route). */
export const NOTIFICATIONS = {
  queueName: 'oc-notifications',
  dlqName: 'oc-notifications-dlq',
  deliveryHandler: 'deliver-notifications',
  /** Attempts per delivery; the last failure moves the message to the DLQ. */
  maxAttempts: 10,
  /**
   * The queue's own redrive (a backstop for messages that crash the handler): above maxAttempts,
   * since a receive that finds another attempt in progress does not count as an attempt.
   */
  maxReceiveCount: 30,
  batchSize: 10,
  /**
   * The queue's message size limit (SQS's default, 256 KiB): a message holds the approval's params
   * (at most 64 KiB), escaped (sqsBody: at most three characters per UTF-8 byte), well under it.
   */
  maxMessageBytes: 262_144,
  /** Longest single backoff SQS allows (ChangeMessageVisibility: 12 h). */
  maxVisibilitySec: 43_200,
  eventTypes: [
    'oc.approval.requested',
    'oc.approval.decided',
    'oc.approval.expired',
    'oc.approval.revoked',
    'oc.approval.withdrawn',
    // Issue 21: a vote of a quorum was cast or withdrawn (the approval is still pending).
    'oc.approval.vote',
    'oc.approval.reminder',
    'oc.approval.extended',
    // Not an approval event: an upstream tool drifted (its subject is the drift fact's event id).
    'oc.upstream.drift',
  ],
  defaultEventSource: 'oc://approvals',
} as const;

export const LIMITS = {
  maxBodyBytes: 1024 * 1024,
  maxParamsBytes: 65_536,
  maxResourceBytes: 2048,
  maxIdempotencyKeyBytes: 256,
  maxLabels: 50,
  defaultApprovalTtlSec: 24 * 3600,
} as const;

/** Powertools service name and the CloudWatch (EMF) namespace: set by CDK, read by the runtime and dashboards. */
export const OBSERVABILITY = {
  serviceName: 'oc-gateway',
  metricsNamespace: 'OpenClause',
} as const;

/** How connectors run: `live` calls the real tools, `mock` answers locally (the local default). */
export const CONNECTORS_MODES = ['live', 'mock'] as const;
export type ConnectorsMode = (typeof CONNECTORS_MODES)[number];

/**
 * Handlers that invoke connector Lambdas. In AWS they, and only they, get `lambda:InvokeFunction`
 * on the connector functions (and the names in `ENV.connectorFunctions`). Names not (yet) in
 * ROUTES are ignored.
 */
export const CONNECTOR_INVOKERS: readonly string[] = ['submit-toolcall', 'execute-toolcall', 'mcp'];

/**
 * Handlers that decide tool calls (the submit core: REST and MCP). In AWS they, and only they,
 * carry shadow mode's candidate policy when one is deployed (issue 24).
 */
export const POLICY_DECIDERS: readonly string[] = ['submit-toolcall', 'mcp'];

/** CloudFormation stack names and the output keys the CLI reads in AWS. */
export const STACKS = {
  data: 'OpenClauseData',
  app: 'OpenClauseApp',
  outputs: {
    apiUrl: 'ApiUrl',
    tableName: 'TableName',
    evidenceBucket: 'EvidenceBucket',
    evidenceSigningKey: 'EvidenceSigningKey',
    evidenceAuditorRole: 'EvidenceAuditorRole',
    notifyQueueUrl: 'NotifyQueueUrl',
    notifyDlqUrl: 'NotifyDlqUrl',
    alarmTopic: 'AlarmTopicArn',
  },
} as const;
