/** Dev approver tokens for tests (HS256 with the local dev secret, as `oc dev-token` prints). */
import { signDevToken } from '../../functions/store/approver-tokens.js';

export const APPROVERS = {
  alice: { tenantId: 'tenant1', email: 'alice@acme.example' },
  carol: { tenantId: 'tenant1', email: 'carol@acme.example' },
  bob: { tenantId: 'tenant2', email: 'bob@globex.example' },
  mallory: { tenantId: 'tenant1', email: 'mallory@acme.example' },
} as const;

export async function tokenFor(
  who: keyof typeof APPROVERS,
  overrides: { ttlSec?: number; secret?: string } = {},
): Promise<string> {
  return signDevToken({ ...APPROVERS[who], ...overrides });
}
