/**
 * Who is signed in. The token is kept in sessionStorage (this tab only, gone when it closes),
 * never in a URL, a cookie or a log. OIDC is loaded only when the deployment uses it.
 */
import { api } from './api.js';

export interface ConsoleConfig {
  auth: 'dev' | 'oidc' | 'none';
  oidc?: { authority: string; client_id: string; scope: string; tenant_claim: string };
}

export interface Session {
  token: string;
  email: string;
  tenantId: string;
  expiresAt: number;
}

const KEY = 'oc.console.session';

export function session(): Session | undefined {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as Session;
    if (typeof s.token === 'string' && s.expiresAt > Date.now()) return s;
  } catch {
    // A damaged entry is a signed-out tab.
  }
  sessionStorage.removeItem(KEY);
  return undefined;
}

export const bearer = (): string | undefined => session()?.token;

function keep(s: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

export async function signInDev(email: string): Promise<void> {
  const r = await api.devSignIn(email);
  keep({ token: r.token, email: r.email, tenantId: r.tenant_id, expiresAt: Date.parse(r.expires_at) });
}

export async function signInOidc(config: ConsoleConfig, returnTo: string): Promise<void> {
  const { signIn } = await import('./oidc.js');
  await signIn(config, returnTo);
}

/** Finishes the code + PKCE redirect; returns where the approver was going. */
export async function completeOidc(config: ConsoleConfig): Promise<string> {
  const { complete } = await import('./oidc.js');
  const r = await complete(config);
  keep(r.session);
  return r.returnTo;
}
