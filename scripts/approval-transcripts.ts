/**
 * Raw HTTP transcripts of each approval workflow of docs/approvers.md, run as an approver and an
 * agent would run them against `npm start` (the ones in docs/approvers.md were captured with this
 * script), and the console screenshots in docs/img/:
 *
 *   a. one approver, one identity: alice votes in Slack, then again in the console: refused;
 *   b. quorum 2-of-2 and stages, with the signed webhook deliveries and the agent's wait;
 *   c. edit-on-approve, re-judged: a denied edit refused, an allowed one parked again, approved by
 *      someone else, executed with its JSON Patch;
 *   d. a batch decision in which a stale item is refused alone;
 *   e. a reminder from the expiry sweep, an extension, a withdrawal and an expiry (never a denial);
 *   f. a standing grant: created, used by a second call (uses counted down), revoked, the next call
 *      parked again;
 *   g. a standing grant on a 2-of-2: both votes ask (API, then Slack's "Approve + calls like it"),
 *      one grant with the narrowest scope; a plain Approve vote approves once, no grant;
 *   h. an edit on a 2-of-2: the votes reset (announced), the old view's vote refused, two others
 *      approve the edited view, execute answers the JSON Patch;
 *   i. Slack's Extend button: the deadline moved, the message re-rendered, the webhook delivered.
 *
 *   npx tsx scripts/approval-transcripts.ts                 # starts its own npm start, on free ports
 *   npx tsx scripts/approval-transcripts.ts --screenshots   # and writes docs/img/console-*.png
 *   npx tsx scripts/approval-transcripts.ts --only b,e      # some workflows only
 *   npx tsx scripts/approval-transcripts.ts --write-policy DIR   # the demo policy folder, then exit
 *
 * The workflows need policy data the shipped `policy/` does not turn on (a directory, a quorum,
 * editable params, reminders); the script writes the demo folder from `policy/` plus the data
 * policy.md shows, and starts `npm start` with OC_POLICY_DIR naming it, its own data folder,
 * a 2 s sweep and free ports (PORT and its neighbours pick them). OC_BASE_URL instead uses a
 * running gateway started with the folder `--write-policy` wrote (its webhooks go to
 * OC_WEBHOOK_PORT, default 8090, where this script listens).
 *
 * Every request is printed as sent (`>`, with who sends it and through which surface) and its
 * answer (`<`), hashes, ids and long strings cut with `…` and the keys that do not matter to the
 * workflow left out (`"…": "…"`). Each workflow is one function: add a row by adding one.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- answers are raw JSON, printed rather than typed */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { verify } from '../bin/cli/commands/webhooks.js';
import { freePort } from '../bin/local/emulators.js';
import { encodeButtonValue } from '../functions/core/slack-message.js';
import { slackSignature } from '../functions/core/slack-signature.js';
import { signDevToken } from '../functions/store/approver-tokens.js';
import { DEV_WEBHOOK, SLACK } from '../functions/shared/constants.js';
import { createClient } from '../sdk/src/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = option('--only')?.split(',');
const SHOTS = path.join(ROOT, 'docs/img');
const CHROMIUM = process.env.OC_CHROMIUM ?? '/usr/bin/chromium';
const WEBHOOK_PORT = Number(process.env.OC_WEBHOOK_PORT ?? DEV_WEBHOOK.port);

// ---------------------------------------------------------------------------------------------
// The demo policy: the shipped folder plus the data each workflow needs (docs/policy.md).

/**
 * tenant1: a directory (alice and carol with Slack users, dave and erin by email), groups, a
 * 2-of-2 for `jira.issue.delete` and `jira.issue.create` and two stages from risk 8; a Slack
 * post's text and channel and an issue's summary are editable, `#all-hands` needs approval and
 * `#exec` is forbidden; standing grants for Slack posts and created issues.
 * tenant2: 70 s requests, a reminder 60 s before (so 10 s after the request), one extension.
 */
function writeDemoPolicy(dir: string, webhookUrl: string): string {
  cpSync(path.join(ROOT, 'policy'), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8'));
  const webhook = { kind: 'webhook', url: webhookUrl, secret_ref: DEV_WEBHOOK.secretRef };
  Object.assign(tenants.tenant1, {
    notify: [webhook, { kind: 'slack', channel: '#security-approvals' }],
    approvers: { emails: [], slack_user_ids: [] },
    directory: {
      alice: { email: 'alice@acme.example', slack: { user_id: 'U123', team_id: 'T0001' } },
      carol: { email: 'carol@acme.example', slack: { user_id: 'U456', team_id: 'T0001' } },
      dave: { email: 'dave@acme.example' },
      erin: { email: 'erin@acme.example' },
    },
    groups: { security: ['alice'], finance: ['carol', 'dave', 'erin'] },
    quorum: {
      actions: { 'jira.issue.delete': { n: 2 }, 'jira.issue.create': { n: 2 } },
      risk_bands: [
        {
          min_risk: 8,
          stages: [
            { group: 'security', n: 1 },
            { group: 'finance', n: 2 },
          ],
        },
      ],
    },
    editable_params: { 'slack.msg.post': ['text', 'channel'], 'jira.issue.create': ['summary'] },
    standing_grants: { actions: ['slack.msg.post', 'jira.issue.create'], max_uses: 10, max_ttl_sec: 3600 },
  });
  Object.assign(tenants.tenant2, {
    notify: [webhook],
    approvers: { emails: ['bob@globex.example'], slack_user_ids: ['U789'] },
    slack: { team_id: 'T0002' },
    approval_ttl_sec: 70,
    reminder_before_sec: 60,
    extensions: { max_sec: 60, max_times: 1 },
  });
  writeFileSync(file, `${JSON.stringify(tenants, null, 2)}\n`);
  const cedar = path.join(dir, 'policies.cedar');
  writeFileSync(
    cedar,
    `${readFileSync(cedar, 'utf8')}
@id("approve-all-hands")
@outcome("approve")
@priority("200")
@reason("posting to #all-hands requires approval")
permit (principal, action == Action::"slack.msg.post", resource)
when { context.resource_name == "#all-hands" };

@id("forbid-exec")
@priority("300")
@reason("no agent posts to #exec")
forbid (principal, action == Action::"slack.msg.post", resource)
when { context.resource_name == "#exec" };
`,
  );
  return dir;
}

if (option('--write-policy')) {
  const dir = path.resolve(option('--write-policy')!);
  mkdirSync(dir, { recursive: true });
  writeDemoPolicy(dir, `http://localhost:${WEBHOOK_PORT}/hooks/approvals`);
  console.log(`demo policy written to ${dir}: OC_POLICY_DIR=${dir} npm start`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Printing: what was sent and what came back, cut.

const short = (s: string) =>
  /^sha256:[0-9a-f]{64}$/.test(s)
    ? `${s.slice(0, 15)}…`
    : /^[0-9a-f]{64}$/.test(s)
      ? `${s.slice(0, 8)}…`
      : /^[0-9a-f-]{36}$/.test(s)
        ? `${s.slice(0, 8)}…`
        : s.length > 130
          ? `${s.slice(0, 110)}…`
          : s.replace(/sha256:([0-9a-f]{8})[0-9a-f]{56}/g, 'sha256:$1…');
const cut = (value: unknown): unknown => {
  if (typeof value === 'string') return short(value);
  if (Array.isArray(value)) return value.map(cut);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cut(v)]));
  return value;
};
/** Only the named keys (paths like `quorum.summary`), then `"…"` for what was left out. */
function pick(value: unknown, keys?: string[]): unknown {
  if (!keys || !value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const [head, ...rest] = key.split('.');
    const v = (value as Record<string, unknown>)[head!];
    if (v === undefined) continue;
    out[head!] = rest.length ? { ...(out[head!] as object), ...(pick(v, [rest.join('.')]) as object) } : v;
  }
  if (Object.keys(out).length < Object.keys(value).length) out['…'] = '…';
  return out;
}
const line = (value: unknown) => JSON.stringify(cut(value)).replaceAll('"…":"…"', '…');
const say = (text: string) => console.log(text);

let base = '';
type Who = { agent: string } | { approver: string; tenant?: string };
const AGENT1 = { agent: 'sk-test-key-1' };
const AGENT2 = { agent: 'sk-test-key-2' };
const as = (approver: string, tenant = 'tenant1') => ({ approver, tenant });

/** One request, printed: `> METHOD path  (who)`, the body, `< status` and the picked answer. */
async function call(
  who: Who,
  method: string,
  route: string,
  body?: unknown,
  show?: string[],
  /** What to print of the body (default all of it). */
  printed: unknown = body,
): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  let label: string;
  if ('agent' in who) {
    headers['X-API-Key'] = who.agent;
    label = `agent ${who.agent === AGENT2.agent ? '(tenant2)' : '(tenant1)'}`;
  } else {
    const email = who.approver.includes('@') ? who.approver : `${who.approver}@acme.example`;
    headers.Authorization = `Bearer ${await signDevToken({ tenantId: who.tenant ?? 'tenant1', email })}`;
    label = `${email}, console/API`;
  }
  const shownRoute = route.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, (id) => `${id.slice(0, 8)}…`);
  say(`> ${method} ${shownRoute}   (${label})`);
  if (printed !== undefined) say(`> ${line(printed)}`);
  const r = await fetch(`${base}${route}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : undefined;
  const shown = json && json.code && !show ? pick(json, ['code', 'message', 'details']) : pick(json, show);
  say(`< ${r.status} ${json === undefined ? '' : line(shown)}`);
  return { status: r.status, json };
}

// ---------------------------------------------------------------------------------------------
// Slack: signed clicks, and a loopback response_url that shows how the message is replaced.

const SLACK_USERS: Record<string, string> = { U123: 'alice', U456: 'carol', U789: 'bob' };
const hooks: { url: string; received: any[] } = { url: '', received: [] };

async function loopback(onRequest: (path: string, body: string, headers: http.IncomingHttpHeaders) => void) {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      onRequest(req.url ?? '', Buffer.concat(chunks).toString('utf8'), req.headers);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  return server;
}

/** The text a replaced Slack message shows, without the request's own lines (they do not change). */
function slackLines(message: any): string[] {
  const texts: string[] = [];
  for (const block of message?.blocks ?? []) {
    if (block.type === 'context') for (const e of block.elements ?? []) if (e.text) texts.push(e.text);
    if (block.type === 'section' && typeof block.text?.text === 'string' && !block.text.text.includes('\n'))
      texts.push(block.text.text);
    // The standing grant a click made: its id and scope (the revoke line does not change).
    if (block.block_id === 'oc_standing_grant') texts.push(block.text.text.split('\n').slice(0, 2).join(' '));
    if (block.type === 'actions')
      texts.push(`[buttons: ${(block.elements ?? []).map((e: any) => e.text?.text).join(' | ')}]`);
  }
  // The deadline line is Slack date markup: left out, it does not change here.
  return texts.filter((t) => !t.startsWith('Expires ')).map((t) => short(t));
}

let clicks = 0;
type SlackButton = 'approve' | 'deny' | 'extend' | 'grant';
const BUTTONS: Record<SlackButton, { id: string; label: string }> = {
  approve: { id: SLACK.approveActionId, label: 'Approve' },
  deny: { id: SLACK.denyActionId, label: 'Deny' },
  extend: { id: SLACK.extendActionId, label: 'Extend by 1 hour' },
  grant: { id: SLACK.grantActionId, label: 'Approve + calls like it' },
};
/** A signed click on one of a request's buttons, as Slack sends it; its answer and the replaced message. */
async function slackClick(
  userId: string,
  decision: SlackButton,
  a: { id: string; event_id: string },
  tenant = 'tenant1',
) {
  const approval = (await get(a.id, tenant === 'tenant1' ? 'alice' : 'bob@globex.example', tenant)).json;
  const fixture = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/slack/block-actions.json'), 'utf8'));
  fixture.user.id = userId;
  // Each tenant's own workspace: tenant1's T0001 (the fixture's), tenant2's T0002.
  if (tenant === 'tenant2') fixture.user.team_id = fixture.team.id = 'T0002';
  fixture.user.username = SLACK_USERS[userId] ?? userId.toLowerCase();
  const hook = `/hooks/${++clicks}`;
  fixture.response_url = `${hooks.url}${hook}`;
  fixture.trigger_id = `${Date.now()}.${clicks}`;
  fixture.actions[0].action_id = BUTTONS[decision].id;
  // Every button but Deny carries the view hash the message showed.
  fixture.actions[0].value = encodeButtonValue({
    d: decision,
    r: a.id,
    e: a.event_id,
    t: tenant,
    ...(decision !== 'deny' ? { h: approval.view.hash } : {}),
  });
  const body = `payload=${encodeURIComponent(JSON.stringify(fixture))}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  say(`> POST /slack/interactions   (Slack user ${userId}, signed; clicks ${BUTTONS[decision].label})`);
  const r = await fetch(`${base}/slack/interactions`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Slack-Request-Timestamp': timestamp,
      'X-Slack-Signature': slackSignature(SLACK.defaultSigningSecret, timestamp, body),
    },
    body,
  });
  const text = await r.text();
  say(`< ${r.status} ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`);
  const deadline = Date.now() + 3000;
  let got: any;
  while (!(got = hooks.received.find((h) => h.path === hook)) && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 50));
  if (got)
    say(
      `  response_url <- ${got.json.replace_original ? 'replaces the message' : 'ephemeral'}: ${slackLines(got.json).join(' / ') || line(pick(got.json, ['text']))}`,
    );
}

// ---------------------------------------------------------------------------------------------
// Webhooks: a loopback receiver that verifies both signatures of every delivery.

const deliveries: { type: string; subject: string; ok: boolean; data: any; shown: boolean }[] = [];
async function startWebhookReceiver() {
  const server = await loopback((_p, body, headers) => {
    const verdict = verify(body, headers, DEV_WEBHOOK.secret, Webhook);
    const event = verdict.ok ? verdict.event : JSON.parse(body);
    deliveries.push({
      type: String(event.type),
      subject: String(event.subject),
      ok: verdict.ok,
      data: event.data,
      shown: false,
    });
  });
  await new Promise<void>((resolve) => server.listen(WEBHOOK_PORT, '127.0.0.1', resolve));
  return server;
}
/** Waits for the deliveries of `types` about `subject`, then prints those not printed yet. */
async function webhooksFor(
  subject: string,
  types: string[],
  show: (d: any) => unknown = () => ({}),
  /** How many deliveries of each type to wait for (an edit's vote reset follows a vote). */
  count = 1,
) {
  const deadline = Date.now() + 20_000;
  const have = () =>
    types.every((t) => deliveries.filter((d) => d.subject === subject && d.type === t).length >= count);
  while (!have() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
  for (const d of deliveries.filter((x) => x.subject === subject && !x.shown)) {
    d.shown = true;
    say(
      `  webhook <- ${d.type} (${d.ok ? 'signatures verified' : 'SIGNATURE NOT VERIFIED'}) ${line(show(d.data))}`,
    );
  }
  for (const t of types)
    if (!deliveries.some((d) => d.subject === subject && d.type === t)) say(`  webhook: no ${t} within 20 s`);
}

// ---------------------------------------------------------------------------------------------
// Agents and approvers, as the guides tell them.

let seq = 0;
const run = Math.floor(Date.now() / 1000) % 100_000;
async function submit(
  who: Who,
  call0: Record<string, unknown>,
  show = ['decision', 'reason', 'approval.id', 'approval.status', 'approval.quorum.summary'],
) {
  const body = {
    agent_id: 'agent-1',
    user_id: 'dana@acme.example',
    risk_score: 3,
    idempotency_key: `transcript-${run}-${++seq}`,
    ...call0,
  };
  // The agent, user and idempotency key are the same in every call: left out of the print.
  const r = await call(
    who,
    'POST',
    '/v1/toolcalls',
    body,
    show,
    pick(body, ['tool', 'action', 'resource', 'params', 'risk_score']),
  );
  return { ...r, id: r.json.approval?.id as string, event_id: r.json.event_id as string };
}
/** An approval as an approver reads it (not printed: the workflows print what they show). */
async function get(id: string, who = 'alice', tenant = 'tenant1') {
  const email = who.includes('@') ? who : `${who}@acme.example`;
  const token = await signDevToken({ tenantId: tenant, email });
  const r = await fetch(`${base}/v1/approvals/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, json: (await r.json()) as any };
}
const viewHash = async (id: string, who = 'alice', tenant = 'tenant1') =>
  (await get(id, who, tenant)).json.view.hash as string;
const deleteIssue = (issue: string) => ({
  tool: 'jira',
  action: 'issue.delete',
  resource: issue,
  params: {},
});
const post = (channel: string, text: string, risk = 3) => ({
  tool: 'slack',
  action: 'msg.post',
  params: { channel, text },
  risk_score: risk,
});
const APPROVAL_SHOW = ['status', 'decided_by', 'quorum.summary'];

// ---------------------------------------------------------------------------------------------
// The console, in chromium (optional): one signed-in page per approver.

type Page = import('playwright-core').Page;
let browser: import('playwright-core').Browser | undefined;
async function consolePage(email: string, route = '/console'): Promise<Page> {
  if (!browser) {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: base });
  const page = await context.newPage();
  page.on('pageerror', (e) => say(`  console page error: ${e.message}`));
  await page.goto('/console');
  await page.getByLabel('Approver email').fill(email);
  await page.getByRole('button', { name: 'Sign in (local dev)' }).click();
  await page.getByRole('heading', { name: 'Pending approvals' }).waitFor();
  if (route !== '/console') await page.goto(route);
  return page;
}
async function screenshot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
  say(`  (screenshot docs/img/${name})`);
  await page.context().close();
}
const screenshots = flag('--screenshots');

// ---------------------------------------------------------------------------------------------
// The workflows.

async function oneIdentity() {
  say('## a. One approver, one identity: alice cannot cast both votes of a 2-of-2\n');
  const a = await submit(AGENT1, deleteIssue(`OPS-${run}1`));
  await slackClick('U123', 'approve', a);
  await call(as('alice'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: await viewHash(a.id) });
  await call(as('carol'), 'GET', `/v1/approvals/${a.id}`, undefined, [
    'status',
    'quorum.summary',
    'quorum.stages',
  ]);
}

async function quorumAndStages() {
  say('## b. Quorum 2-of-2, then two stages: the votes, the webhooks and the agent waiting\n');
  const a = await submit(AGENT1, deleteIssue(`OPS-${run}2`));
  await call(AGENT1, 'POST', `/v1/toolcalls/${a.event_id}/execute`, {});
  await call(
    as('alice'),
    'POST',
    `/v1/approvals/${a.id}/approve`,
    { view_hash: await viewHash(a.id) },
    APPROVAL_SHOW,
  );
  await call(AGENT1, 'POST', `/v1/toolcalls/${a.event_id}/execute`, {});
  if (screenshots) {
    const page = await consolePage('carol@acme.example', `/console/approvals/${a.id}`);
    await page.getByText('1 of 2 approvals').first().waitFor();
    await screenshot(page, 'console-quorum-progress.png');
  }
  say('# the agent waits with the SDK; carol clicks Approve in Slack while it does:');
  const sdk = createClient({ baseUrl: base, apiKey: AGENT1.agent });
  let clicked: Promise<void> | undefined;
  const done = await sdk.waitForApprovalThenExecute(a.event_id, {
    pollInterval: 200,
    onPending: (info) => {
      if (clicked) return;
      say(`  sdk.waitForApprovalThenExecute onPending: {"progress":${JSON.stringify(info.progress)}}`);
      clicked = slackClick('U456', 'approve', a);
    },
  });
  await clicked;
  say(`  sdk.waitForApprovalThenExecute returns: ${line(pick(done, ['decision', 'result.status']))}`);
  await webhooksFor(a.id, ['oc.approval.requested', 'oc.approval.vote', 'oc.approval.decided'], (d) =>
    pick(d, ['status', 'decided_by', 'quorum.summary']),
  );

  say('\n# stages: risk 8 needs 1 of security (alice), then 2 of finance (carol, dave, erin)');
  const s = await submit(AGENT1, post('#general', `Rotate the keys ${run}`, 8));
  await slackClick('U456', 'approve', s);
  await call(as('carol'), 'POST', `/v1/approvals/${s.id}/approve`, { view_hash: await viewHash(s.id) });
  await call(
    as('alice'),
    'POST',
    `/v1/approvals/${s.id}/approve`,
    { view_hash: await viewHash(s.id) },
    APPROVAL_SHOW,
  );
  await slackClick('U456', 'approve', s);
  await call(
    as('dave'),
    'POST',
    `/v1/approvals/${s.id}/approve`,
    { view_hash: await viewHash(s.id) },
    APPROVAL_SHOW,
  );
  await webhooksFor(s.id, ['oc.approval.decided'], (d) => pick(d, ['status', 'quorum.summary']));
}

async function editOnApprove() {
  say('## c. Edit-on-approve, re-judged\n');
  const a = await submit(AGENT1, post('#all-hands', 'Deploy at 6'));
  if (screenshots) {
    const page = await consolePage('alice@acme.example', `/console/approvals/${a.id}`);
    await page.getByText('Or edit it').first().waitFor();
    await screenshot(page, 'console-edit-form.png');
  }
  const hash = await viewHash(a.id);
  await call(as('alice'), 'POST', `/v1/approvals/${a.id}/edit`, {
    params: { channel: '#exec' },
    view_hash: hash,
  });
  const edited = await call(
    as('alice'),
    'POST',
    `/v1/approvals/${a.id}/edit`,
    { params: { text: 'Deploy at 18:00' }, view_hash: hash, comment: 'not during the standup' },
    ['status', 'params', 'view.hash', 'edit.patch', 'edit.editors'],
  );
  const newHash = edited.json.view?.hash as string;
  await call(as('alice'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: newHash });
  await call(as('carol'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: hash });
  await call(as('carol'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: newHash }, APPROVAL_SHOW);
  await call(AGENT1, 'POST', `/v1/toolcalls/${a.event_id}/execute`, {}, [
    'decision',
    'result.output',
    'edit.patch',
    'edit.edited_by',
  ]);
}

async function batch() {
  say('## d. A batch decision: every item decided on its own, a stale one refused alone\n');
  const items = [];
  for (const text of ['Standup moved to 10', 'Lunch is on us', 'Office closed Friday'])
    items.push(await submit(AGENT1, post('#all-hands', `${text} ${run}`), ['decision', 'approval.id']));
  const hashes = await Promise.all(items.map((i) => viewHash(i.id)));
  if (screenshots) {
    const page = await consolePage('alice@acme.example');
    for (const i of items) {
      const row = page.locator(`li[data-approval-id="${i.id}"]`);
      await row.waitFor();
      await row.locator('input.select').check();
    }
    await page.getByRole('button', { name: 'Review selected (3)' }).click();
    await page.getByRole('heading', { name: 'Review 3 pending approvals' }).waitFor();
    await screenshot(page, 'console-batch-review.png');
  }
  say('# meanwhile carol fixes the third one:');
  await call(
    as('carol'),
    'POST',
    `/v1/approvals/${items[2]!.id}/edit`,
    { params: { text: 'Office closed Monday' }, view_hash: hashes[2] },
    ['status', 'view.hash'],
  );
  say('# and a 2-of-2 in the same batch: alice casts one vote on it, as she would alone');
  const quorum = await submit(AGENT1, deleteIssue(`OPS-${run}4`), ['decision', 'approval.id']);
  items.push(quorum);
  hashes.push(await viewHash(quorum.id));
  const r = await call(
    as('alice'),
    'POST',
    '/v1/approvals/batch',
    {
      decision: 'approve',
      comment: 'reviewed item by item',
      items: items.map((i, n) => ({ approval_id: i.id, view_hash: hashes[n] })),
    },
    ['decided', 'voted', 'refused'],
  );
  for (const item of r.json.results ?? [])
    say(
      `<   ${line(item.error ? pick(item, ['approval_id', 'status', 'error.code']) : { ...(pick(item, ['approval_id', 'status', 'result', 'progress']) as object), approval: pick(item.approval, ['status', 'decided_by']) })}`,
    );
}

async function reminderExtensionWithdrawalExpiry() {
  say('## e. Reminder, extension, withdrawal, expiry (tenant2: 70 s requests, a reminder 60 s before)\n');
  const bob = as('bob@globex.example', 'tenant2');
  const one = await submit(AGENT2, { ...deleteIssue(`GLX-${run}1`), user_id: 'dana@globex.example' }, [
    'decision',
    'approval.id',
    'approval.expires_at',
  ]);
  const two = await submit(AGENT2, { ...deleteIssue(`GLX-${run}2`), user_id: 'dana@globex.example' }, [
    'decision',
    'approval.id',
    'approval.expires_at',
  ]);
  say('# the expiry sweep sends each its one reminder 10 s later:');
  await webhooksFor(one.id, ['oc.approval.requested', 'oc.approval.reminder'], (d) =>
    pick(d, ['status', 'reminded_at', 'expires_at']),
  );
  await call(bob, 'GET', `/v1/approvals/${one.id}`, undefined, ['status', 'reminded_at', 'expires_at']);
  await call(bob, 'POST', `/v1/approvals/${one.id}/extend`, { extend_sec: 3600, comment: 'owner is asleep' });
  await call(bob, 'POST', `/v1/approvals/${one.id}/extend`, { extend_sec: 60, comment: 'owner is asleep' }, [
    'status',
    'expires_at',
    'extensions',
  ]);
  await webhooksFor(one.id, ['oc.approval.extended'], (d) => pick(d, ['status', 'expires_at', 'extension']));
  say('# the agent no longer needs it:');
  await call(AGENT2, 'POST', `/v1/toolcalls/${one.event_id}/withdraw`, {}, [
    'status',
    'approval.status',
    'approval.decided_by',
  ]);
  await call(bob, 'POST', `/v1/approvals/${one.id}/approve`, {
    view_hash: await viewHash(one.id, 'bob@globex.example', 'tenant2'),
  });
  await call(AGENT2, 'POST', `/v1/toolcalls/${one.event_id}/execute`, {});
  await slackClick('U789', 'approve', one, 'tenant2');
  await webhooksFor(one.id, ['oc.approval.withdrawn'], (d) => pick(d, ['status', 'decided_by']));
  say('# nobody decides the other one; after its deadline:');
  await webhooksFor(two.id, ['oc.approval.reminder'], (d) => pick(d, ['status', 'reminded_at']));
  const until = Date.parse(two.json.approval.expires_at) + 5_000;
  while (Date.now() < until) await new Promise((res) => setTimeout(res, 500));
  await webhooksFor(two.id, ['oc.approval.expired'], (d) => pick(d, ['status', 'decided_by']));
  await call(bob, 'GET', `/v1/approvals/${two.id}`, undefined, ['status', 'decided_by', 'expires_at']);
  await call(AGENT2, 'POST', `/v1/toolcalls/${two.event_id}/execute`, {});
  await call(bob, 'POST', `/v1/approvals/${two.id}/approve`, {
    view_hash: await viewHash(two.id, 'bob@globex.example', 'tenant2'),
  });
  await slackClick('U789', 'approve', two, 'tenant2');
  if (screenshots) {
    const page = await consolePage('bob@globex.example', `/console/approvals/${two.id}`);
    await page.getByText('expired').first().waitFor();
    await screenshot(page, 'console-expired.png');
  }
}

async function standingGrant() {
  say('## f. A standing grant: created, used, counted down, revoked\n');
  const a = await submit(AGENT1, post('#all-hands', `Release notes ${run}`));
  const created = await call(
    as('carol'),
    'POST',
    `/v1/approvals/${a.id}/standing-grant`,
    {
      view_hash: await viewHash(a.id),
      target_pattern: '#all-hands',
      max_uses: 2,
      expires_in_sec: 3600,
      comment: 'release week',
    },
    ['approval.status', 'standing_grant'],
  );
  const grant = created.json.standing_grant?.id as string;
  await call(AGENT1, 'POST', `/v1/toolcalls/${a.event_id}/execute`, {}, ['decision', 'result.status']);
  say('# a second call like it runs at once, on the grant:');
  const second = await submit(AGENT1, post('#all-hands', `Release notes, part 2 ${run}`), [
    'decision',
    'reason',
    'standing_grant',
    'result.status',
  ]);
  say('# its record: the decision fact names the grant');
  const record = await call(AGENT1, 'GET', `/v1/toolcalls/${second.event_id}`, undefined, ['decision']);
  const decided = (record.json.evidence ?? []).find((f: any) => f.kind === 'toolcall.decided');
  say(
    `<   evidence[toolcall.decided].record: ${line(pick(decided?.record ?? {}, ['decision', 'standing_grant']))}`,
  );
  await call(as('alice'), 'GET', `/v1/grants/${grant}`, undefined, [
    'status',
    'uses_left',
    'max_uses',
    'target_pattern',
  ]);
  if (screenshots) {
    const page = await consolePage('alice@acme.example', '/console/grants');
    await page.locator('#grants li').first().waitFor();
    await screenshot(page, 'console-grants.png');
  }
  await call(as('alice'), 'POST', `/v1/grants/${grant}/revoke`, { reason: 'release done' }, [
    'status',
    'revoked_by',
    'uses_left',
  ]);
  say('# the next call like it waits for a human again:');
  await submit(AGENT1, post('#all-hands', `Release notes, part 3 ${run}`), [
    'decision',
    'reason',
    'approval.status',
    'standing_grant',
  ]);
}

const createIssue = (summary: string, project = 'OPS') => ({
  tool: 'jira',
  action: 'issue.create',
  resource: project,
  params: { project, summary, issue_type: 'Task' },
  risk_score: 7,
});

async function quorumStandingGrant() {
  say('## g. A standing grant on a 2-of-2: every vote asks, the completing one makes one grant\n');
  const a = await submit(AGENT1, createIssue(`Weekly report ${run}`));
  say('# alice votes through the API, asking for OPS* (5 uses, an hour):');
  await call(
    as('alice'),
    'POST',
    `/v1/approvals/${a.id}/standing-grant`,
    { view_hash: await viewHash(a.id), target_pattern: 'OPS*', max_uses: 5, expires_in_sec: 3600 },
    ['approval.status', 'approval.quorum.summary', 'standing_grant'],
  );
  await call(as('carol'), 'GET', `/v1/approvals/${a.id}`, undefined, ['status', 'quorum.stages']);
  say("# carol clicks Slack's Approve + calls like it (this exact target, the policy's uses, an hour):");
  await slackClick('U456', 'grant', a);
  const approval = (await get(a.id)).json;
  say(
    `<   GET /v1/approvals/${a.id.slice(0, 8)}…: ${line(pick(approval, ['status', 'decided_by', 'standing_grant']))}`,
  );
  const grants = await call(as('alice'), 'GET', '/v1/grants', undefined, []);
  const mine = (grants.json.items ?? []).filter((g: any) => g.approval_id === a.id);
  say(
    `<   grants made by this approval: ${mine.length}: ${line(mine.map((g: any) => pick(g, ['target_pattern', 'max_uses', 'uses_left', 'expires_at'])))}`,
  );
  await call(AGENT1, 'POST', `/v1/toolcalls/${a.event_id}/execute`, {}, ['decision', 'result.status']);
  say('# the next call like it runs at once, on the grant:');
  await submit(AGENT1, createIssue(`Weekly report, again ${run}`), [
    'decision',
    'reason',
    'standing_grant',
    'result.status',
  ]);

  say('\n# a second 2-of-2 (project ENG): alice asks for a grant, carol clicks the plain Approve');
  const b = await submit(AGENT1, createIssue(`Monthly report ${run}`, 'ENG'));
  await call(
    as('alice'),
    'POST',
    `/v1/approvals/${b.id}/standing-grant`,
    { view_hash: await viewHash(b.id), target_pattern: 'ENG', max_uses: 3, expires_in_sec: 600 },
    ['approval.status', 'approval.quorum.summary', 'standing_grant'],
  );
  await slackClick('U456', 'approve', b);
  await call(as('alice'), 'GET', `/v1/approvals/${b.id}`, undefined, [
    'status',
    'decided_by',
    'standing_grant',
  ]);
  const after = (await call(as('alice'), 'GET', '/v1/grants', undefined, [])).json.items ?? [];
  say(`<   grants made by this approval: ${after.filter((g: any) => g.approval_id === b.id).length}`);
  const record = await call(AGENT1, 'GET', `/v1/toolcalls/${b.event_id}`, undefined, ['decision']);
  const decided = (record.json.evidence ?? []).find((f: any) => f.kind === 'approval.decided');
  if (decided)
    say(
      `<   evidence[approval.decided].record: ${line(pick(decided.record ?? {}, ['status', 'standing_grant', 'standing_grant_declined']))}`,
    );
  await call(AGENT1, 'POST', `/v1/toolcalls/${b.event_id}/execute`, {}, ['decision', 'result.status']);
}

async function quorumEdit() {
  say('## h. An edit on a 2-of-2: the votes reset, the old view refused, two others approve the edit\n');
  const a = await submit(AGENT1, createIssue(`Quartly numbers ${run}`, 'FIN'));
  const hash = await viewHash(a.id);
  await call(as('alice'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: hash }, APPROVAL_SHOW);
  await webhooksFor(a.id, ['oc.approval.requested', 'oc.approval.vote'], (d) => pick(d, ['quorum.summary']));
  say('# carol fixes the summary instead of voting:');
  const edited = await call(
    as('carol'),
    'POST',
    `/v1/approvals/${a.id}/edit`,
    { params: { summary: `Quarterly numbers ${run}` }, view_hash: hash, comment: 'typo' },
    ['status', 'view.hash', 'quorum.summary', 'edit.patch', 'edit.editors'],
  );
  const newHash = edited.json.view?.hash as string;
  await webhooksFor(a.id, ['oc.approval.vote'], (d) => pick(d, ['status', 'quorum.summary']), 2);
  say('# the old view is gone: a vote on it is refused, and the editor cannot vote:');
  await call(as('dave'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: hash });
  await call(as('carol'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: newHash });
  say('# two others approve the edited view:');
  await call(as('alice'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: newHash }, APPROVAL_SHOW);
  await call(as('dave'), 'POST', `/v1/approvals/${a.id}/approve`, { view_hash: newHash }, APPROVAL_SHOW);
  await call(AGENT1, 'POST', `/v1/toolcalls/${a.event_id}/execute`, {}, [
    'decision',
    'result.output',
    'edit.patch',
    'edit.edited_by',
  ]);
}

async function slackExtend() {
  say("## i. Slack's Extend button: the deadline moved, the message re-rendered, announced\n");
  const a = await submit(AGENT1, post('#all-hands', `Town hall moved ${run}`), [
    'decision',
    'approval.id',
    'approval.expires_at',
  ]);
  await slackClick('U123', 'extend', a);
  await call(as('carol'), 'GET', `/v1/approvals/${a.id}`, undefined, ['status', 'expires_at', 'extensions']);
  await webhooksFor(a.id, ['oc.approval.requested', 'oc.approval.extended'], (d) =>
    pick(d, ['status', 'expires_at', 'extension']),
  );
}

const WORKFLOWS: Record<string, () => Promise<void>> = {
  a: oneIdentity,
  b: quorumAndStages,
  c: editOnApprove,
  d: batch,
  e: reminderExtensionWithdrawalExpiry,
  f: standingGrant,
  g: quorumStandingGrant,
  h: quorumEdit,
  i: slackExtend,
};

// ---------------------------------------------------------------------------------------------
// The stack: a running one (OC_BASE_URL), or npm start with the demo policy.

async function startStack(): Promise<() => Promise<void>> {
  const work = mkdtempSync(path.join(tmpdir(), 'oc-approval-transcripts-'));
  const policyDir = writeDemoPolicy(
    path.join(work, 'policy'),
    `http://localhost:${WEBHOOK_PORT}/hooks/approvals`,
  );
  const port = async (name: string, fallback: number) =>
    process.env[name] ?? String(await freePort(fallback));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('npm_') && k !== 'NODE_OPTIONS') env[k] = v;
  Object.assign(env, {
    PORT: await port('PORT', 0),
    OC_DYNAMODB_PORT: await port('OC_DYNAMODB_PORT', 0),
    OC_AWS_PORT: await port('OC_AWS_PORT', 0),
    OC_S3_PORT: await port('OC_S3_PORT', 0),
    OC_WITNESS_PORT: await port('OC_WITNESS_PORT', 0),
    OC_POLICY_DIR: policyDir,
    OC_DATA_DIR: path.join(work, 'data'),
    OC_SWEEP_INTERVAL_SEC: '2',
  });
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr.on('data', (d: Buffer) => (output += d.toString()));
  base = `http://localhost:${env.PORT}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (npm.exitCode !== null) throw new Error(`npm start exited:\n${output}`);
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`npm start not ready in 180 s:\n${output}`);
    await new Promise((res) => setTimeout(res, 500));
  }
  console.error(`[transcripts] npm start is up at ${base} (policy ${policyDir})`);
  return async () => {
    if (npm.exitCode === null) {
      process.kill(-npm.pid!, 'SIGTERM');
      await new Promise((res) => npm.once('exit', res));
    }
  };
}

const receiver = await startWebhookReceiver();
const slackHooks = await loopback((p, body) => hooks.received.push({ path: p, json: JSON.parse(body) }));
await new Promise<void>((resolve) => slackHooks.listen(0, '127.0.0.1', resolve));
hooks.url = `http://127.0.0.1:${(slackHooks.address() as { port: number }).port}`;
let stop = async () => {};
let failed = false;
try {
  if (process.env.OC_BASE_URL) base = process.env.OC_BASE_URL;
  else stop = await startStack();
  for (const [name, workflow] of Object.entries(WORKFLOWS)) {
    if (only && !only.includes(name)) continue;
    try {
      await workflow();
    } catch (error) {
      failed = true;
      say(`!! workflow ${name} failed: ${(error as Error).stack}`);
    }
    say('');
  }
} finally {
  await browser?.close();
  await stop();
  receiver.close();
  slackHooks.close();
}
process.exit(failed ? 1 : 0);
