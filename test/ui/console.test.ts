/// <reference lib="dom" />
/**
 * The web console in a real browser: Debian's chromium driven by playwright-core (never a
 * browser download), against a local stack. An approver signs in with the local dev sign-in,
 * sees a pending approval created through the API, opens it, approves it and sees the status
 * change; denies another with a reason using only the keyboard; a request carrying `<script>`
 * and `<img onerror>` renders as text and runs nothing; another tenant's approval is not found.
 * Screenshots of the list and detail views, desktop and phone width, go to __screenshots__/.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { executeApproved } from '../../functions/core/execute.js';
import { createPolicyEngine } from '../../functions/core/policy.js';
import { executeDeps } from '../../functions/handlers/execution-state.js';
import { DEV_WEBHOOK } from '../../functions/shared/constants.js';
import { signDevToken } from '../../functions/store/approver-tokens.js';
import { loadPolicyBundle } from '../../functions/store/policy-files.js';
import { tokenFor } from '../support/approvers.js';
import { waitFor } from '../support/processes.js';
import { KEYS, policyDirWithRoutes, startTestStack, toolCall, type TestStack } from '../support/stack.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const CHROMIUM = process.env.OC_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '__screenshots__');
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

let stack: TestStack;
let browser: Browser;
let receiver: Receiver;

/** What the page did that it must not: dialogs, uncaught errors, CSP violations, console errors. */
interface Incidents {
  dialogs: string[];
  errors: string[];
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  mkdirSync(SHOTS, { recursive: true });
  receiver = await startReceiver('/hooks/console');
  // tenant1 notifies a webhook receiver, so the detail view has a delivery to show; tenant2 has a
  // directory and needs 2 approvers for everything (issue 21: the console shows the votes).
  const policyDir = policyDirWithRoutes({
    tenant1: [{ kind: 'webhook', url: receiver.url, secret_ref: 'tenant1_webhook' }],
  });
  const tenantsFile = path.join(policyDir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(tenantsFile, 'utf8'));
  tenants.tenant2.approvers = { emails: [], slack_user_ids: [] };
  tenants.tenant2.directory = {
    bob: { email: 'bob@globex.example' },
    gina: { email: 'gina@globex.example' },
  };
  // And a Slack post in two stages, gina (lead) first: bob's early vote is told why it is refused.
  tenants.tenant2.groups = { lead: ['gina'] };
  tenants.tenant2.quorum = {
    default: { n: 2 },
    actions: { 'slack.msg.post': { stages: [{ group: 'lead', n: 1 }, { n: 1 }] } },
  };
  // A quorum's vote may ask for a standing grant (the console shows what each vote asked for).
  tenants.tenant2.standing_grants = {
    actions: ['jira.issue.delete'],
    max_uses: 5,
    max_ttl_sec: 3600,
    allow_destructive: true,
  };
  // Deadlines move by at most 30 min: the console's Extend offers what the bound allows.
  tenants.tenant2.extensions = { max_sec: 1800, max_times: 1 };
  writeFileSync(tenantsFile, JSON.stringify(tenants));
  stack = await startTestStack({
    env: { OC_POLICY_DIR: policyDir },
    notifications: { env: { OC_WEBHOOK_SECRETS: `tenant1_webhook=${DEV_WEBHOOK.secret}` } },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await receiver?.close();
});

/**
 * A page, its incidents recorded. A console error is an incident unless it is a 404 the test
 * expects, named by the path it was for (a foreign approval's lookup, say).
 */
async function open(
  viewport = DESKTOP,
  expected404: string[] = [],
): Promise<{ context: BrowserContext; page: Page; incidents: Incidents }> {
  const context = await browser.newContext({ viewport, baseURL: stack.url });
  const page = await context.newPage();
  const incidents: Incidents = { dialogs: [], errors: [] };
  page.on('dialog', (d) => {
    incidents.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => incidents.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = m.location().url;
    const expected = /\b404\b/.test(m.text()) && url && expected404.includes(new URL(url).pathname);
    if (!expected) incidents.errors.push(`console: ${m.text()} (${url || 'no url'})`);
  });
  return { context, page, incidents };
}

async function signIn(page: Page, email: string): Promise<void> {
  await page.goto('/console');
  await page.getByLabel('Approver email').fill(email);
  await page.getByRole('button', { name: 'Sign in (local dev)' }).click();
  await page.getByRole('heading', { name: 'Pending approvals' }).waitFor();
}

async function parked(overrides: Record<string, unknown> = {}, key: string = KEYS.tenant1) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({
      tool: 'jira',
      action: 'issue.delete',
      resource: 'OPS-42',
      params: { issue: 'OPS-42', delete_subtasks: true },
      user_id: 'dana@acme.example',
      ...overrides,
    }),
    key,
  );
  expect(r.json.decision).toBe('approve');
  return {
    eventId: r.json.event_id as string,
    approvalId: r.json.approval.id as string,
    url: r.json.approval.url,
  };
}

const row = (page: Page, approvalId: string) => page.locator(`li[data-approval-id="${approvalId}"]`);

describe('the approval console in chromium', () => {
  it('signs in, lists a pending approval, opens it from approval.url, approves it and shows the change', async () => {
    const { approvalId, url } = await parked();
    const { context, page, incidents } = await open();
    await signIn(page, 'alice@acme.example');
    await expect(page.locator('#who-name').textContent()).resolves.toBe('alice@acme.example · tenant1');
    await row(page, approvalId).waitFor();
    await expect(row(page, approvalId).textContent()).resolves.toContain('jira.issue.delete');
    await page.screenshot({ path: path.join(SHOTS, 'list-desktop.png'), fullPage: true });

    // approval.url opens this approval's page (the session is this tab's).
    expect(new URL(url).pathname).toBe(`/console/approvals/${approvalId}`);
    await page.goto(new URL(url).pathname);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    // The approval view: target and every param, above the buttons, the button naming the act.
    const view = await page.locator('#view').textContent();
    expect(view).toContain('Target: OPS-42');
    expect(view).toContain('  delete_subtasks = true\n  issue = "OPS-42"');
    const approveButton = page.getByRole('button', { name: 'Approve: delete OPS-42', exact: true });
    const [viewBox, buttonBox] = [
      await page.locator('#view').boundingBox(),
      await approveButton.boundingBox(),
    ];
    expect(viewBox!.y + viewBox!.height).toBeLessThanOrEqual(buttonBox!.y);
    const text = await page.locator('main').innerText();
    expect(text).toContain('dana@acme.example'); // requester
    expect(text).toContain('destructive action requires approval'); // reason
    expect(text).toMatch(/Policy version\s+sha256:[0-9a-f]{64}/);
    expect(text).toMatch(/toolcall\.decided\s+(seq \d+|not sealed yet)/);
    // The request's notification reached the receiver; reload so the page reads its record.
    await waitFor('the webhook delivery', () =>
      receiver.received.some((r) => r.json?.subject === approvalId) ? true : undefined,
    );
    await page.reload();
    await page.locator('#deliveries tbody tr').first().waitFor();
    const delivery = await page.locator('#deliveries tbody tr').first().innerText();
    expect(delivery).toContain(`Webhook ${receiver.url}`);
    expect(delivery).toMatch(/requested\s+delivered\s+1/);
    await page.screenshot({ path: path.join(SHOTS, 'detail-desktop.png'), fullPage: true });

    await page.getByLabel(/Comment \(approve\)/).fill('ok, checked the duplicate');
    await approveButton.click();
    await page.locator('#answer', { hasText: 'Approved by alice@acme.example' }).waitFor();
    await page.locator('#status', { hasText: 'approved' }).waitFor();
    await page.locator('.outcome', { hasText: 'Approved by alice@acme.example.' }).waitFor();
    await expect(page.getByRole('button', { name: 'Approve' }).count()).resolves.toBe(0);
    // The server recorded it, with the comment, and the chain holds the decision.
    const stored = await stack.request('GET', `/v1/approvals/${approvalId}`, {
      token: await tokenFor('carol'),
    });
    expect(stored.json).toMatchObject({
      status: 'approved',
      decided_by: 'alice@acme.example',
      comment: 'ok, checked the duplicate',
    });
    // The console sent the hash of the view it showed: the decision's fact records it, confirmed.
    const event = await stack.get(`/v1/toolcalls/${stored.json.event_id}`);
    const decided = event.json.evidence.find((f: any) => f.record.kind === 'approval.decided');
    expect(decided.record.view).toEqual({
      version: 'oc-approval-view/v1',
      hash: stored.json.view.hash,
      confirmed: true,
    });
    await page.locator('.facts li', { hasText: 'approval.decided' }).waitFor();
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it('denies with a reason using only the keyboard, and filters by status', async () => {
    const { approvalId } = await parked({ resource: 'OPS-77', params: {} });
    const { context, page, incidents } = await open();
    await signIn(page, 'carol@acme.example');
    await row(page, approvalId).locator('a').focus();
    await page.keyboard.press('Enter');
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    await page.locator('#note').focus();
    await page.keyboard.type('not during the freeze');
    await page.keyboard.press('Tab'); // Approve
    await page.keyboard.press('Tab'); // Deny
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('deny');
    await page.keyboard.press('Enter');
    await page.locator('#status', { hasText: 'denied' }).waitFor();
    await page
      .locator('.outcome', { hasText: 'Denied by carol@acme.example: not during the freeze' })
      .waitFor();

    await page.goto('/console');
    await page.locator('#f-status').selectOption('denied');
    await page.getByRole('heading', { name: 'Denied approvals' }).waitFor();
    await row(page, approvalId).waitFor();
    await expect(row(page, approvalId).locator('.badge').textContent()).resolves.toBe('denied');
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it('shows an approval a changed policy revoked at execute as revoked by policy, with why', async () => {
    const { eventId, approvalId } = await parked({ resource: 'OPS-77', params: { issue: 'OPS-77' } });
    const approved = await stack.request('POST', `/v1/approvals/${approvalId}/approve`, {
      token: await tokenFor('carol'),
    });
    expect(approved.status).toBe(200);
    // The agent executes after a deploy that froze deletes: execute's core with that live policy.
    const frozen = policyDirWithRoutes({});
    appendFileSync(
      path.join(frozen, 'policies.cedar'),
      '\n@id("freeze-deletes")\n@reason("deletes are frozen for the audit")\nforbid (principal, action == Action::"jira.issue.delete", resource);\n',
    );
    const live = createPolicyEngine(loadPolicyBundle(frozen));
    const refused = await executeApproved(
      { ...executeDeps(stack.state), policy: live },
      { caller: { tenantId: 'tenant1', keyId: 'console-test' }, eventId },
    ).catch((e: { code?: string }) => e);
    expect((refused as { code?: string }).code).toBe('POLICY_CHANGED');

    const { context, page, incidents } = await open();
    await signIn(page, 'alice@acme.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#status', { hasText: 'revoked by policy' }).waitFor();
    await expect(page.locator('.outcome').textContent()).resolves.toBe(
      'Approved by carol@acme.example, then revoked when the agent executed it: the policy changed and the live policy denies it (deletes are frozen for the audit). The tool call did not run and never will.',
    );
    await expect(page.getByText('revoked, never used, expires', { exact: false }).count()).resolves.toBe(1);
    await page.screenshot({ path: path.join(SHOTS, 'revoked-by-policy.png'), fullPage: true });
    await page.goto('/console');
    await page.locator('#f-status').selectOption('revoked_by_policy');
    await page.getByRole('heading', { name: 'Revoked by policy approvals' }).waitFor();
    await row(page, approvalId).waitFor();
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it('explains a 409 when someone else decided first', async () => {
    const { approvalId } = await parked();
    const { context, page } = await open();
    await signIn(page, 'alice@acme.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    const carol = await stack.request('POST', `/v1/approvals/${approvalId}/deny`, {
      token: await tokenFor('carol'),
      body: { reason: 'first' },
    });
    expect(carol.status).toBe(200);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('#answer', { hasText: /already denied by carol@acme\.example.*\(409\)/ }).waitFor();
    await context.close();
  });

  it('renders <script> and <img onerror> in a request as text and runs nothing', async () => {
    // Markup cannot be a resource or a param name any more (the target is an issue key or a
    // channel, params are the action's own): it reaches the console in a param value.
    const refused = await stack.post(
      '/v1/toolcalls',
      toolCall({
        tool: 'jira',
        action: 'issue.delete',
        resource: '<img src=x onerror="window.__xss=1;alert(1)">',
        params: {},
      }),
    );
    expect(refused.status).toBe(422);
    expect(refused.json.details).toEqual([{ path: '/params/issue', message: expect.any(String) }]);
    const hostile = {
      tool: 'slack',
      action: 'msg.post',
      risk_score: 8, // above tenant1's threshold: parked for approval
      resource: '',
      params: {
        channel: '#general',
        text:
          '<script>window.__xss=2;alert(2)</script><img src=x onerror=alert(3)><svg onload=alert(4)>' +
          '<b onmouseover=alert(5)>key</b>"><iframe src=javascript:alert(6)>',
      },
      user_id: '<script>alert(7)</script>',
      agent_id: 'agent-<i>x</i>',
    };
    const { approvalId } = await parked(hostile);
    const { context, page, incidents } = await open();
    const violations: string[] = [];
    await page.exposeFunction('__cspViolation', (v: string) => violations.push(v));
    await page.addInitScript(() =>
      document.addEventListener('securitypolicyviolation', (e) =>
        (window as unknown as { __cspViolation: (v: string) => void }).__cspViolation(e.violatedDirective),
      ),
    );
    await signIn(page, 'alice@acme.example');
    await row(page, approvalId).waitFor();
    await expect(row(page, approvalId).locator('.item-resource').textContent()).resolves.toBe('#general');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    const view = (await page.locator('#view').textContent()) ?? '';
    expect(view).toContain('channel = "#general"');
    expect(view).toContain(
      'text = "<script>window.__xss=2;alert(2)</script><img src=x onerror=alert(3)><svg onload=alert(4)>' +
        '<b onmouseover=alert(5)>key</b>\\"><iframe src=javascript:alert(6)>"',
    );
    await expect(page.locator('main').innerText()).resolves.toContain('<script>alert(7)</script>');
    // Nothing was parsed as markup: no element from the data exists, no script ran.
    await expect(
      page.locator('main img, main script, main iframe, main svg, main b, main i').count(),
    ).resolves.toBe(0);
    await page.mouse.move(10, 10);
    await page.waitForTimeout(300); // an onerror would fire on the failed image load by now
    await expect(
      page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).resolves.toBeUndefined();
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    expect(violations).toEqual([]);
    await context.close();
  });

  it('shows invisible characters in params as ⟨U+…⟩: the Trojan Source text cannot pass for another', async () => {
    const text = 'Deploy finished \u202e:eludehcs ot gnidrocca\u202c ok\u200b\u2028\u{E0041}\ufe0f';
    const { approvalId } = await parked({
      tool: 'slack',
      action: 'msg.post',
      risk_score: 8,
      resource: '',
      params: { channel: '#ops', text },
    });
    const { context, page, incidents } = await open();
    await signIn(page, 'alice@acme.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    const view = (await page.locator('#view').innerText()) ?? '';
    expect(view).toContain(
      'text = "Deploy finished ⟨U+202E⟩:eludehcs ot gnidrocca⟨U+202C⟩ ok⟨U+200B⟩⟨U+2028⟩⟨U+E0041⟩⟨U+FE0F⟩"',
    );
    // Nothing invisible reaches the page from the data, so nothing reorders or hides what runs.
    const main = await page.locator('main').innerText();
    expect(main).not.toMatch(/[\u202a-\u202e\u2066-\u2069\u200b\u2028\u{E0000}-\u{E007F}]/u);
    expect(main).not.toContain('according to schedule');
    await expect(page.getByRole('button', { name: 'Approve: post #ops', exact: true }).count()).resolves.toBe(
      1,
    );
    await page.screenshot({ path: path.join(SHOTS, 'detail-invisible-characters.png'), fullPage: true });
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it('sends the hash of the view it shows; a decision on another view is refused (409) and said in words', async () => {
    const { approvalId } = await parked({ resource: 'OPS-43', params: { issue: 'OPS-43' } });
    const { context, page, incidents } = await open();
    await signIn(page, 'alice@acme.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    // Stand in for a page whose view is not the approval's: its decision names another hash.
    const sent: unknown[] = [];
    await page.route('**/approve', async (route) => {
      const body = JSON.parse(route.request().postData() ?? '{}') as Record<string, unknown>;
      sent.push(body);
      await route.continue({ postData: JSON.stringify({ ...body, view_hash: '0'.repeat(64) }) });
    });
    await page.getByRole('button', { name: 'Approve: delete OPS-43', exact: true }).click();
    await page.locator('#answer', { hasText: 'no longer shows what you decided on' }).waitFor();
    const shown = await stack.request('GET', `/v1/approvals/${approvalId}`, {
      token: await tokenFor('carol'),
    });
    expect(sent).toEqual([{ view_hash: shown.json.view.hash }]);
    expect(shown.json.status).toBe('pending');
    // The page's own 409 answer is in its console log too: expected here.
    expect(incidents.dialogs).toEqual([]);
    await context.close();
  });

  it("shows a quorum approval's votes and what is still needed, and records a vote as a vote", async () => {
    const { approvalId } = await parked({ tool: 'jira', action: 'issue.delete' }, KEYS.tenant2);
    const { context, page, incidents } = await open();
    await signIn(page, 'bob@globex.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#quorum', { hasText: '0 of 2 approvals; needs 2 more' }).waitFor();
    await page.getByRole('button', { name: 'Approve' }).click();
    await page
      .locator('#answer', { hasText: 'Your vote is recorded: 1 of 2 approvals; needs 1 more.' })
      .waitFor();
    await page.locator('#quorum', { hasText: '1 of 2 approvals; needs 1 more' }).waitFor();
    await expect(page.locator('.stages').innerText()).resolves.toContain('bob (api,');
    await page.screenshot({ path: path.join(SHOTS, 'quorum-vote.png'), fullPage: true });
    // bob again: one person, one vote.
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('#answer', { hasText: /already voted.*\(409\)/ }).waitFor();
    expect(incidents.dialogs).toEqual([]);
    await context.close();
  });

  it('shows which votes of a quorum asked for a standing grant', async () => {
    const { approvalId } = await parked({ tool: 'jira', action: 'issue.delete' }, KEYS.tenant2);
    const gina = await signDevToken({ tenantId: 'tenant2', email: 'gina@globex.example' });
    const shown = await stack.request('GET', `/v1/approvals/${approvalId}`, { token: gina });
    const asked = await stack.request('POST', `/v1/approvals/${approvalId}/standing-grant`, {
      token: gina,
      body: JSON.stringify({
        target_pattern: `${shown.json.resource}`,
        max_uses: 2,
        expires_in_sec: 600,
        view_hash: shown.json.view.hash,
      }),
    });
    expect(asked.status).toBe(200);
    const { context, page, incidents } = await open();
    await signIn(page, 'bob@globex.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#quorum', { hasText: '1 of 2 approvals; needs 1 more' }).waitFor();
    await expect(page.locator('.stages').innerText()).resolves.toContain(`gina (api, `);
    await expect(page.locator('.stages').innerText()).resolves.toMatch(
      /asks for a standing grant: \S+, up to 2 uses until /,
    );
    await page.screenshot({ path: path.join(SHOTS, 'quorum-grant-vote.png'), fullPage: true });
    expect(incidents.dialogs).toEqual([]);
    await context.close();
  });

  it('tells an approver outside the current stage which stage needs whom', async () => {
    // Found by scripts/approval-transcripts.ts: it said "You are not on this tenant's approver list".
    const { approvalId } = await parked(
      {
        tool: 'slack',
        action: 'msg.post',
        resource: undefined,
        params: { channel: '#ops', text: 'rotate' },
        risk_score: 8,
      },
      KEYS.tenant2,
    );
    const { context, page, incidents } = await open();
    await signIn(page, 'bob@globex.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.locator('#quorum', { hasText: 'needs 1 more from lead' }).waitFor();
    await page.getByRole('button', { name: /^Approve/ }).click();
    await page
      .locator('#answer', {
        hasText:
          'Your vote was not recorded: stage 1 of this approval needs 1 approver from group lead, and you are not in it. (403)',
      })
      .waitFor();
    expect(incidents.dialogs).toEqual([]);
    await context.close();
  });

  it('offers the extension the bound allows (30 min on a tenant allowing less than an hour), and it succeeds', async () => {
    const { approvalId } = await parked({ tool: 'jira', action: 'issue.delete' }, KEYS.tenant2);
    const bob = await signDevToken({ tenantId: 'tenant2', email: 'bob@globex.example' });
    const before = (await stack.request('GET', `/v1/approvals/${approvalId}`, { token: bob })).json
      .expires_at;
    const { context, page, incidents } = await open();
    await signIn(page, 'bob@globex.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.getByRole('button', { name: 'Extend by 30 min' }).click();
    await page.locator('#answer', { hasText: 'Extended' }).waitFor();
    const after = (await stack.request('GET', `/v1/approvals/${approvalId}`, { token: bob })).json;
    expect(Date.parse(after.expires_at) - Date.parse(before)).toBe(1_800_000);
    // The one extension policy allows is spent: no step is left to offer.
    await page.locator('dd', { hasText: 'by bob' }).waitFor();
    await expect(page.locator('#extend').count()).resolves.toBe(0);
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it("shows another tenant's approval as not found, exactly like a missing one", async () => {
    const { approvalId } = await parked({ tool: 'jira', action: 'issue.delete' }, KEYS.tenant2);
    const { context, page } = await open();
    await signIn(page, 'alice@acme.example');
    for (const id of [approvalId, '3f2504e0-4f89-41d3-9a0c-0305e82c3301']) {
      await page.goto(`/console/approvals/${id}`);
      await page.getByRole('heading', { name: 'Approval not found' }).waitFor();
      await expect(page.locator('main').innerText()).resolves.not.toContain('OPS-42');
    }
    await context.close();
  });

  it('fits a phone-sized screen (list and detail), with nothing wider than the viewport', async () => {
    const long = `${'O'.repeat(64)}-${'9'.repeat(13)}`; // the longest issue key
    const { approvalId } = await parked({ resource: long, params: { issue: long } });
    const { context, page, incidents } = await open(PHONE);
    await page.goto('/console');
    await page.getByLabel('Approver email').waitFor();
    // Nobody is signed in yet: nothing to sign out of.
    await expect(page.getByRole('button', { name: 'Sign out' }).isVisible()).resolves.toBe(false);
    await page.screenshot({ path: path.join(SHOTS, 'sign-in-phone.png'), fullPage: true });
    await signIn(page, 'alice@acme.example');
    await expect(page.getByRole('button', { name: 'Sign out' }).isVisible()).resolves.toBe(true);
    await row(page, approvalId).waitFor();
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await expect(overflow()).resolves.toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(SHOTS, 'list-phone.png'), fullPage: true });
    await row(page, approvalId).locator('a').click();
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    await expect(overflow()).resolves.toBeLessThanOrEqual(0);
    // The delivery's status is on screen, not in a column scrolled off to the right.
    const delivered = page.locator('#deliveries .badge').first();
    await delivered.waitFor({ timeout: 30_000 });
    const box = await delivered.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width - 8);
    await page.screenshot({ path: path.join(SHOTS, 'detail-phone.png'), fullPage: true });
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it('extends a pending deadline with one click, and revokes a standing grant on its page (issue 21)', async () => {
    const { approvalId } = await parked({ resource: 'OPS-88', params: {} });
    const before = (
      await stack.request('GET', `/v1/approvals/${approvalId}`, { token: await tokenFor('carol') })
    ).json.expires_at as string;
    const rotate = await stack.post(
      '/v1/toolcalls',
      toolCall({
        tool: 'slack',
        action: 'msg.post',
        params: { channel: '#ops', text: 'rotate' },
        risk_score: 8,
      }),
    );
    const granted = await stack.request('POST', `/v1/approvals/${rotate.json.approval.id}/standing-grant`, {
      token: await tokenFor('alice'),
      body: { target_pattern: '#ops', max_uses: 2, expires_in_sec: 600 },
    });
    expect(granted.status).toBe(201);
    const grantId = granted.json.standing_grant.id as string;

    const { context, page, incidents } = await open();
    await signIn(page, 'carol@acme.example');
    await page.goto(`/console/approvals/${approvalId}`);
    await page.getByRole('button', { name: 'Extend by 1 hour' }).click();
    await page.locator('#answer', { hasText: 'Extended' }).waitFor();
    const after = (
      await stack.request('GET', `/v1/approvals/${approvalId}`, { token: await tokenFor('carol') })
    ).json;
    expect(Date.parse(after.expires_at) - Date.parse(before)).toBe(3_600_000);
    await page.locator('dd', { hasText: 'by carol@acme.example' }).waitFor();

    await page.goto('/console');
    await page.getByRole('link', { name: 'Standing grants' }).click();
    const item = page.locator(`li[data-grant="${grantId}"]`);
    await expect(item.locator('.badge').textContent()).resolves.toBe('active');
    await item.getByRole('button', { name: 'Revoke' }).click();
    await page.locator(`li[data-grant="${grantId}"] .badge`, { hasText: 'revoked' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'grants.png') });
    const read = await stack.request('GET', `/v1/grants/${grantId}`, { token: await tokenFor('alice') });
    expect(read.json).toMatchObject({ status: 'revoked', revoked_by: 'carol@acme.example' });
    expect(incidents).toEqual({ dialogs: [], errors: [] });
    await context.close();
  });

  it('keeps the token out of the URL and asks to sign in again when it is refused', async () => {
    const { context, page } = await open();
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await signIn(page, 'alice@acme.example');
    const token = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem('oc.console.session') ?? '{}').token,
    );
    expect(typeof token).toBe('string');
    expect(urls.filter((u) => u.includes(token))).toEqual([]);
    expect(page.url()).not.toContain(token);
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('oc.console.session') ?? '{}');
      sessionStorage.setItem('oc.console.session', JSON.stringify({ ...s, token: `${s.token}x` }));
    });
    await page.reload();
    await page.getByText('Your session ended; sign in again.').waitFor();
    await context.close();
  });
});
