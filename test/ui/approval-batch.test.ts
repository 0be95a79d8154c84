/// <reference lib="dom" />
/**
 * Batch decisions and edit-on-approve in the console, in Debian's chromium (playwright-core):
 * an approver ticks several pending approvals, sees every one's full view (above the one
 * confirm), approves them all and sees each item's own outcome, one refused alone because it
 * changed meanwhile; and edits a param in the edit form, the call parked again on the edited view.
 * Screenshots go to __screenshots__/ (batch-review-desktop.png, edit-desktop.png).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tokenFor } from '../support/approvers.js';
import { editPolicyDir } from '../support/edit-policy.js';
import { KEYS, startTestStack, toolCall, type TestStack } from '../support/stack.js';

const CHROMIUM = process.env.OC_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '__screenshots__');
const DESKTOP = { width: 1280, height: 860 };

let stack: TestStack;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  mkdirSync(SHOTS, { recursive: true });
  stack = await startTestStack({ env: { OC_POLICY_DIR: editPolicyDir() } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

async function signedIn(email: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: stack.url });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto('/console');
  await page.getByLabel('Approver email').fill(email);
  await page.getByRole('button', { name: 'Sign in (local dev)' }).click();
  await page.getByRole('heading', { name: 'Pending approvals' }).waitFor();
  return { page, errors };
}

async function parked(body: Record<string, unknown>) {
  const r = await stack.post(
    '/v1/toolcalls',
    toolCall({ user_id: 'dana@acme.example', ...body }),
    KEYS.tenant1,
  );
  expect(r.json.decision).toBe('approve');
  return {
    eventId: r.json.event_id as string,
    id: r.json.approval.id as string,
    hash: r.json.approval.view.hash,
  };
}

const row = (page: Page, id: string) => page.locator(`li[data-approval-id="${id}"]`);

describe('batch decisions and edits in the console (chromium)', () => {
  it('shows every selected approval’s full view before one confirm, and each item’s own outcome', async () => {
    const one = await parked({ tool: 'jira', action: 'issue.delete', resource: 'UIB-1', params: {} });
    const two = await parked({ tool: 'jira', action: 'issue.delete', resource: 'UIB-2', params: {} });
    const three = await parked({ params: { channel: '#all-hands', text: 'Ship it' } });
    const { page, errors } = await signedIn('alice@acme.example');
    for (const a of [one, two, three]) {
      await row(page, a.id).waitFor();
      await row(page, a.id).locator('input.select').check();
    }
    await page.getByRole('button', { name: 'Review selected (3)' }).click();
    await page.getByRole('heading', { name: 'Review 3 pending approvals' }).waitFor();

    // Every item's whole view, each above the one confirm.
    const items = page.locator('article.batch-item');
    await expect(items.count()).resolves.toBe(3);
    const texts = await items.locator('pre.view').allTextContents();
    expect(texts.join('\n')).toContain('Target: UIB-1');
    expect(texts.join('\n')).toContain('Target: UIB-2');
    expect(texts.join('\n')).toContain('  text = "Ship it"');
    const confirm = page.getByRole('button', { name: 'Approve all 3' });
    const confirmBox = (await confirm.boundingBox())!;
    for (const box of await Promise.all((await items.all()).map((i) => i.boundingBox())))
      expect(box!.y + box!.height).toBeLessThanOrEqual(confirmBox.y);
    await page.screenshot({ path: path.join(SHOTS, 'batch-review-desktop.png'), fullPage: true });

    // Meanwhile someone else edits the third: its view changes, so it alone is refused.
    const edited = await stack.request('POST', `/v1/approvals/${three.id}/edit`, {
      token: await tokenFor('carol'),
      body: { params: { text: 'Ship it tomorrow' }, view_hash: three.hash },
    });
    expect(edited.json.status).toBe('pending');

    await page.locator('#batch-note').fill('reviewed each');
    await confirm.click();
    await page.locator('#batch-answer', { hasText: '2 decided, 1 refused.' }).waitFor();
    const outcome = (id: string) =>
      page.locator(`article[data-approval-id="${id}"] .batch-outcome`).textContent();
    await expect(outcome(one.id)).resolves.toBe('Approved by alice@acme.example.');
    await expect(outcome(two.id)).resolves.toBe('Approved by alice@acme.example.');
    await expect(outcome(three.id)).resolves.toMatch(/no longer shows what you decided on/);
    await page.screenshot({ path: path.join(SHOTS, 'batch-result-desktop.png'), fullPage: true });

    const alice = await tokenFor('alice');
    for (const [a, status] of [
      [one, 'approved'],
      [two, 'approved'],
      [three, 'pending'],
    ] as const) {
      const now = await stack.request('GET', `/v1/approvals/${a.id}`, { token: alice });
      expect(now.json.status).toBe(status);
    }
    expect(errors).toEqual([]);
  });

  it('edits a param in the edit form: parked again on the edited view, the editor may not approve it', async () => {
    const a = await parked({ params: { channel: '#all-hands', text: 'Deploy at 5' } });
    const { page, errors } = await signedIn('alice@acme.example');
    await page.goto(`/console/approvals/${a.id}`);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    await page.locator('#edit-text').fill('Deploy at 6');
    await page.locator('#edit-comment').fill('after the standup');
    await page.screenshot({ path: path.join(SHOTS, 'edit-desktop.png'), fullPage: true });
    await page.getByRole('button', { name: 'Submit edit (judged again by policy)' }).click();
    await page.locator('#edit-answer', { hasText: 'someone else must approve' }).waitFor();
    await page.locator('#edit-patch').waitFor();
    await expect(page.locator('#view').textContent()).resolves.toContain('  text = "Deploy at 6"');
    await expect(page.locator('#edit-patch').textContent()).resolves.toBe(
      'replace /params/text = "Deploy at 6"',
    );
    await page.screenshot({ path: path.join(SHOTS, 'edited-desktop.png'), fullPage: true });
    await page.getByRole('button', { name: 'Approve: post #all-hands' }).click();
    await page.locator('#answer', { hasText: 'someone else must decide it' }).waitFor();

    // An edit policy denies is refused in words, nothing changed.
    const b = await parked({ params: { channel: '#all-hands', text: 'x' } });
    await page.goto(`/console/approvals/${b.id}`);
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    await page.locator('#edit-channel').fill('#exec');
    await page.getByRole('button', { name: 'Submit edit (judged again by policy)' }).click();
    await page
      .locator('#edit-answer', { hasText: 'Policy denies the edited call (no agent posts to #exec)' })
      .waitFor();
    expect(errors).toEqual([]);
  });
});
