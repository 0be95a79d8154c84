/** `oc dev-token`: a local approver JWT (dev mode only). */
import type { Command } from 'commander';
import { DEV_JWT, ENV } from '../../../functions/shared/constants.js';
import { nonBlank, tenantId, tokenLifetimeSec } from '../args.js';
import { examples, type Act } from '../context.js';

interface Options {
  tenant: string;
  email: string;
  sub?: string;
  ttlSec: number;
}

export function registerDevToken(program: Command, act: Act): void {
  const devToken = program
    .command('dev-token')
    .description(
      `print a local approver JWT (HS256 with ${ENV.devJwtSecret}, default ${DEV_JWT.defaultSecret}; the local stack only)`,
    )
    .requiredOption('--tenant <tenant>', "the approver's tenant id", tenantId)
    .requiredOption('--email <email>', "the approver's email (on the tenant's approvers list)", nonBlank)
    .option('--sub <sub>', 'the subject (default: the email)', nonBlank)
    .option(
      '--ttl-sec <sec>',
      'lifetime in seconds (at most a day: longer tokens are refused)',
      tokenLifetimeSec,
      3600,
    );
  examples(devToken, [
    'TOKEN=$(npx oc dev-token --tenant tenant1 --email alice@acme.example)',
    'curl -s http://localhost:3000/v1/approvals -H "Authorization: Bearer $TOKEN"',
  ]);
  act(
    devToken,
    (opts: Options) => `sign a dev token for ${opts.email}`,
    async (opts: Options, ctx) => {
      const { signDevToken } = await import('../../../functions/store/approver-tokens.js');
      ctx.out(
        await signDevToken({
          tenantId: opts.tenant,
          email: opts.email,
          ...(opts.sub ? { sub: opts.sub } : {}),
          ttlSec: opts.ttlSec,
          secret: ctx.env[ENV.devJwtSecret] || DEV_JWT.defaultSecret,
          tenantClaim: ctx.env[ENV.jwtTenantClaim] || 'tenant_id',
        }),
      );
    },
  );
}
