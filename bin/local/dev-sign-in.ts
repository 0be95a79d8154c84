/**
 * `POST /console/dev-sign-in` on the local host only (never deployed, and only with
 * `OC_JWT_MODE=dev`): `{"email"}` of an approver on some tenant's allowlist gets a dev token for
 * that tenant, so a newcomer can sign into the console without an identity provider. The token
 * is exactly what `npx oc dev-token` prints; the approver routes still check everything.
 */
import * as z from 'zod';
import type { Config } from '../../functions/shared/config.js';
import { AppError, validationError } from '../../functions/shared/errors.js';
import { readJsonBody } from '../../functions/shared/http.js';
import { rules } from '../../functions/shared/input-rules.js';
import { signDevToken } from '../../functions/store/approver-tokens.js';
import { defaultPolicyDir, loadTenants } from '../../functions/store/policy-files.js';

/** A console session lasts a working day; the approver routes accept up to a day. */
const DEV_SESSION_SEC = 8 * 3600;

const Body = z.strictObject({ email: rules.id(512) });

export async function devSignIn(
  config: Config,
  body: Buffer,
  contentType: string | undefined,
): Promise<{ status: number; body: Record<string, unknown> }> {
  if (config.jwtMode !== 'dev')
    throw new AppError(404, 'NOT_FOUND', 'dev sign-in is off (OC_JWT_MODE is not dev)');
  const parsed = Body.safeParse(readJsonBody(contentType, body));
  if (!parsed.success)
    throw validationError('invalid request body', [
      { path: 'email', message: parsed.error.issues[0]?.message ?? 'required' },
    ]);
  const email = parsed.data.email;
  const tenants = loadTenants(config.policyDir ?? defaultPolicyDir());
  // An approver's email on the tenant's list, or in its approver directory (issue 21).
  const tenantId = Object.keys(tenants).find((t) =>
    [
      ...(tenants[t]?.approvers.emails ?? []),
      ...Object.values(tenants[t]?.directory ?? {}).flatMap((entry) => (entry.email ? [entry.email] : [])),
    ].some((e) => e.toLowerCase() === email.toLowerCase()),
  );
  if (!tenantId)
    throw new AppError(403, 'APPROVER_NOT_ALLOWED', 'that email is on no tenant\u2019s approver allowlist');
  const token = await signDevToken({
    tenantId,
    email,
    ttlSec: DEV_SESSION_SEC,
    secret: config.devJwtSecret,
    tenantClaim: config.jwtTenantClaim,
  });
  return {
    status: 200,
    body: {
      token,
      email,
      tenant_id: tenantId,
      expires_at: new Date(Date.now() + DEV_SESSION_SEC * 1000).toISOString(),
    },
  };
}
