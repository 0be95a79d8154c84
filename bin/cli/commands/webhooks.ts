/**
 * `oc webhooks redrive`: moves dead-lettered notifications back to the queue (SQS
 * StartMessageMoveTask in AWS; the same moves by hand locally, and for one tenant anywhere).
 * `oc webhooks listen`: a local receiver that verifies both signatures of every request
 * (Standard Webhooks and X-OC-Signature-256) and prints each event.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import { DEV_WEBHOOK, STACKS } from '../../../functions/shared/constants.js';
import { port, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { CliError, RemoteError, UsageError } from '../errors.js';
import { addTargetOptions, localEndpoint, resolveLocalTarget, type TargetOptions } from '../target.js';

// The SQS client, the signing libraries and the CloudEvents SDK load only when a webhooks command
// runs: every other `oc` command starts without them.
const sqsSdk = () => import('@aws-sdk/client-sqs');

interface RedriveOptions extends TargetOptions {
  tenant?: string;
}

interface ListenOptions {
  port: number;
  secret: string;
  path?: string;
}

async function queueUrls(sqs: SQSClient, names: { queue: string; dlq: string }) {
  const { GetQueueUrlCommand } = await sqsSdk();
  const url = async (name: string) => {
    try {
      return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
    } catch (error) {
      throw new CliError(
        `no queue ${name} on the local SQS: is the stack running (npm start) with this table? (${(error as Error).name})`,
      );
    }
  };
  return { queueUrl: await url(names.queue), dlqUrl: await url(names.dlq) };
}

/** The deployed queues, from the app stack's outputs. */
async function awsQueueUrls(sqs: SQSClient): Promise<{ queueUrl: string; dlqUrl: string }> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const cfn = new CloudFormationClient({});
  try {
    const outputs = (await cfn.send(new DescribeStacksCommand({ StackName: STACKS.app }))).Stacks?.[0]
      ?.Outputs;
    const of = (key: string) => outputs?.find((o) => o.OutputKey === key)?.OutputValue;
    const queueUrl = of(STACKS.outputs.notifyQueueUrl);
    const dlqUrl = of(STACKS.outputs.notifyDlqUrl);
    if (!queueUrl || !dlqUrl)
      throw new CliError(
        `stack ${STACKS.app} has no ${STACKS.outputs.notifyQueueUrl} / ${STACKS.outputs.notifyDlqUrl} output: deploy it first.`,
      );
    void sqs;
    return { queueUrl, dlqUrl };
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new RemoteError('CloudFormation', error);
  } finally {
    cfn.destroy();
  }
}

export function registerWebhooks(program: Command, act: Act): void {
  const webhooks = program
    .command('webhooks')
    .description('approval notifications: the DLQ and a local receiver');
  examples(webhooks, [
    'npx oc webhooks listen                         # verify and print what npm start sends',
    'npx oc webhooks redrive --tenant tenant1       # retry what exhausted its attempts',
  ]);

  const redrive = webhooks
    .command('redrive')
    .description('move dead-lettered notifications back to the queue; each gets a fresh round of attempts')
    .option('--tenant <tenant>', "only this tenant's notifications", tenantId);
  addTargetOptions(redrive);
  examples(redrive, [
    'npx oc webhooks redrive                        # every message in the DLQ',
    'npx oc webhooks redrive --tenant tenant1',
    'npx oc webhooks redrive --aws                  # SQS StartMessageMoveTask on the deployed DLQ',
  ]);
  act(
    redrive,
    (opts: RedriveOptions) => `redrive dead-lettered notifications${opts.tenant ? ` of ${opts.tenant}` : ''}`,
    async (opts: RedriveOptions, ctx) => {
      const { GetQueueAttributesCommand, SQSClient, StartMessageMoveTaskCommand } = await sqsSdk();
      const { moveMessages } = await import('../../../functions/store/notify-queue.js');
      const { localQueueNames } = await import('../../local/notifications.js');
      let sqs: SQSClient;
      let urls: { queueUrl: string; dlqUrl: string };
      if (opts.aws) {
        sqs = new SQSClient({});
        urls = await awsQueueUrls(sqs);
      } else {
        const target = resolveLocalTarget(opts, ctx.env);
        sqs = new SQSClient({
          endpoint: localEndpoint(target, 'sqs'),
          region: 'us-east-1',
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        });
        urls = await queueUrls(sqs, localQueueNames(target.table.value));
      }
      try {
        if (opts.aws && !opts.tenant) {
          const arn = async (url: string) =>
            (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
              .Attributes!.QueueArn!;
          const task = await sqs.send(
            new StartMessageMoveTaskCommand({
              SourceArn: await arn(urls.dlqUrl),
              DestinationArn: await arn(urls.queueUrl),
            }),
          );
          ctx.out(`started moving the DLQ back to the notification queue (task ${task.TaskHandle})`);
          return;
        }
        const keep = (body: string) => {
          if (!opts.tenant) return true;
          try {
            return (JSON.parse(body) as { tenant_id?: unknown }).tenant_id === opts.tenant;
          } catch {
            return false;
          }
        };
        const { moved, skipped } = await moveMessages(sqs, urls.dlqUrl, urls.queueUrl, keep);
        ctx.out(
          `moved ${moved} notification(s) from the DLQ back to the queue` +
            (skipped > 0 ? `; left ${skipped} of other tenants` : ''),
        );
      } finally {
        sqs.destroy();
      }
    },
  );

  const listen = webhooks
    .command('listen')
    .description(
      'run a local webhook receiver that verifies both signatures and prints each event (Ctrl-C stops it)',
    )
    .option('--port <port>', 'port to listen on (the demo tenant sends to 8090)', port, DEV_WEBHOOK.port)
    .option(
      '--secret <secret>',
      "the route's whsec_ secret (default: the local demo secret)",
      DEV_WEBHOOK.secret,
    );
  examples(listen, [
    'npx oc webhooks listen                          # port 8090, the demo secret: what npm start sends',
    'npx oc webhooks listen --port 9000 --secret whsec_...',
  ]);
  act(
    listen,
    (opts: ListenOptions) => `listen for webhooks on port ${opts.port}`,
    async (opts: ListenOptions, ctx) => {
      const { isWebhookSecret } = await import('../../../functions/core/notifications.js');
      const { Webhook } = await import('standardwebhooks');
      const { createServer } = await import('node:http');
      if (!isWebhookSecret(opts.secret))
        throw new UsageError(
          '--secret must be a whsec_<base64> secret of 16 bytes or more (as OC_WEBHOOK_SECRETS holds).',
        );
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const verdict = verify(body, req.headers, opts.secret, Webhook);
          const at = new Date().toISOString();
          if (!verdict.ok) {
            ctx.out(`${at} REJECTED ${req.method} ${req.url}: ${verdict.reason}`);
            res.writeHead(401, { 'Content-Type': 'text/plain' }).end('signature check failed\n');
            return;
          }
          const e = verdict.event;
          const d = (e.data ?? {}) as Record<string, unknown>;
          ctx.out(
            `${at} ${String(e.type)} subject=${String(e.subject)} id=${String(e.id)} tenant=${String(d.tenant_id)}` +
              `${d.decision ? ` decision=${String(d.decision)} by=${String(d.decided_by)}` : ''} signatures=ok` +
              `\n    ${String(d.summary ?? '')}`,
          );
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
        });
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(
            error.code === 'EADDRINUSE'
              ? new CliError(`port ${opts.port} is in use: stop what listens there, or pass --port`)
              : error,
          ),
        );
        server.listen(opts.port, '127.0.0.1', resolve);
      });
      ctx.out(
        `listening on http://localhost:${opts.port} (verifying webhook-signature and X-OC-Signature-256); Ctrl-C stops`,
      );
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const)
          process.once(signal, () => server.close(() => resolve()));
      });
    },
  );
}

type Verdict = { ok: true; event: Record<string, unknown> } | { ok: false; reason: string };

/** Both signatures, with the official Standard Webhooks verifier and an HMAC of the raw body. */
export function verify(
  body: string,
  headers: http.IncomingHttpHeaders,
  secret: string,
  Webhook: typeof import('standardwebhooks').Webhook,
): Verdict {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(',') : v;
  let event: Record<string, unknown>;
  try {
    event = new Webhook(secret).verify(body, flat) as Record<string, unknown>;
  } catch (error) {
    return { ok: false, reason: `webhook-signature: ${(error as Error).message}` };
  }
  const expected = `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(body, 'utf8').digest('hex')}`;
  const got = flat['x-oc-signature-256'] ?? '';
  if (got.length !== expected.length || !timingSafeEqual(Buffer.from(got), Buffer.from(expected)))
    return { ok: false, reason: 'X-OC-Signature-256 does not match the body' };
  if (event.id !== flat['webhook-id'])
    return { ok: false, reason: 'the CloudEvent id is not the webhook-id' };
  return { ok: true, event };
}
