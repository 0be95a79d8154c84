/// <reference lib="dom" />
/**
 * The console's deployed sign-in in chromium: OIDC authorization code + PKCE (oidc-client-ts)
 * against a loopback provider, the approval routes verifying the RS256 ID token against its JWKS
 * (`OC_JWT_MODE=oidc`, as deployed). No dev sign-in is offered or answered in this mode.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startOidcProvider, type OidcProvider } from '../support/oidc-provider.js';
import { startTestStack, toolCall, type TestStack } from '../support/stack.js';

const CHROMIUM = process.env.OC_CHROMIUM ?? '/usr/bin/chromium';
const CLIENT_ID = 'oc-console-test';

let idp: OidcProvider;
let stack: TestStack;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  idp = await startOidcProvider({
    clientId: CLIENT_ID,
    user: { sub: 'okta|carol', email: 'carol@acme.example', tenant_id: 'tenant1' },
  });
  stack = await startTestStack({
    env: {
      OC_JWT_MODE: 'oidc',
      OC_JWT_ISSUER: idp.issuer,
      OC_JWT_AUDIENCE: CLIENT_ID,
      OC_JWT_JWKS_URL: `${idp.issuer}/jwks`,
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await idp?.close();
});

describe('OIDC sign-in (code + PKCE)', () => {
  it('tells the page the provider, and lets the CSP reach it', async () => {
    const r = await stack.request('GET', '/console/config.json', { key: null });
    expect(r.json).toEqual({
      auth: 'oidc',
      oidc: {
        authority: idp.issuer,
        client_id: CLIENT_ID,
        scope: 'openid email profile',
        tenant_claim: 'tenant_id',
      },
    });
    expect(r.headers['content-security-policy']).toContain(`connect-src 'self' ${idp.issuer};`);
    const dev = await stack.request('POST', '/console/dev-sign-in', {
      key: null,
      body: { email: 'alice@acme.example' },
    });
    expect(dev.status).toBe(404);
  });

  it('signs in through the provider, returns to the approval it was opened on, and approves with the ID token', async () => {
    const submitted = await stack.post(
      '/v1/toolcalls',
      toolCall({ tool: 'jira', action: 'issue.delete', resource: 'OPS-5', params: {} }),
    );
    const approvalId = submitted.json.approval.id as string;
    const context = await browser.newContext({ baseURL: stack.url });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(new URL(submitted.json.approval.url).pathname);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#status', { hasText: 'pending' }).waitFor();
    expect(new URL(page.url()).pathname).toBe(`/console/approvals/${approvalId}`);
    // The code and state are gone from the address bar once used.
    expect(page.url()).not.toMatch(/[?&](code|state)=/);
    await expect(page.locator('#who-name').textContent()).resolves.toBe('carol@acme.example · tenant1');

    const [authorization] = idp.authorizations;
    expect(authorization?.get('response_type')).toBe('code');
    expect(authorization?.get('client_id')).toBe(CLIENT_ID);
    expect(authorization?.get('code_challenge_method')).toBe('S256');
    expect(authorization?.get('redirect_uri')).toBe(`${stack.url}/console/callback`);
    expect(idp.tokenRequests.map((t) => t.pkceOk)).toEqual([true]);

    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('#status', { hasText: 'approved' }).waitFor();
    await page.locator('.outcome', { hasText: 'Approved by carol@acme.example.' }).waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });
});
