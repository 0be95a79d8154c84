/**
 * Submit a destructive call, print where a human approves it, wait, execute, print the result.
 *
 *   OC_BASE_URL=http://localhost:3000 OC_API_KEY=sk-test-key-1 npx tsx sdk/examples/approve-and-execute.ts
 *
 * Exits 0 once the call has run; 2 when it was denied, 3 when the approval expired, 4 when the
 * wait timed out (OC_WAIT_TIMEOUT_MS, default 10 minutes), 1 on anything else.
 */
import {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalRevokedByPolicyError,
  ApprovalWaitTimeoutError,
  createClient,
} from '../src/index.js';

const baseUrl = process.env.OC_BASE_URL ?? 'http://localhost:3000';
const apiKey = process.env.OC_API_KEY;
if (!apiKey) {
  console.error('set OC_API_KEY (locally: sk-test-key-1)');
  process.exit(1);
}
const timeout = Number(process.env.OC_WAIT_TIMEOUT_MS ?? 10 * 60_000);
const issue = process.env.OC_ISSUE ?? 'OPS-1';

const client = createClient({ baseUrl, apiKey });
// Ctrl-C stops the wait cleanly.
const controller = new AbortController();
process.once('SIGINT', () => controller.abort(new Error('interrupted')));

async function main(): Promise<number> {
  const submitted = await client.submit({
    agent_id: 'sdk-example',
    tool: 'jira',
    action: 'issue.delete',
    resource: issue,
    params: { issue },
    risk_score: 0,
  });
  console.log(`decision: ${submitted.decision} (${submitted.reason}), event ${submitted.event_id}`);
  if (submitted.decision === 'allow') {
    console.log('result:', JSON.stringify(submitted.result));
    return submitted.result?.status === 'success' ? 0 : 1;
  }
  if (submitted.decision === 'deny' || !submitted.approval) return 1;

  // The key's tenant: the one an approver must belong to (from the event, never assumed).
  const { tenant_id: tenant } = await client.get(submitted.event_id);
  console.log(`approval needed: ${submitted.approval.url} (expires ${submitted.approval.expires_at})`);
  console.log(
    `approve it there, or:  curl -X POST ${baseUrl}/v1/approvals/${submitted.approval.id}/approve \\`,
  );
  console.log(
    `               -H "Authorization: Bearer $(npx oc dev-token --tenant ${tenant} --email <an approver of ${tenant}>)"`,
  );
  try {
    const execution = await client.waitForApprovalThenExecute(submitted.event_id, {
      signal: controller.signal,
      timeout,
      onPending: ({ attempt, nextPollMs }) =>
        console.log(`still pending (poll ${attempt}); next check in ${Math.round(nextPollMs / 1000)} s`),
    });
    console.log(`executed as ${execution.event_id}: ${JSON.stringify(execution.result)}`);
    return execution.result.status === 'success' ? 0 : 1;
  } catch (error) {
    if (error instanceof ApprovalDeniedError) {
      console.error(`denied by ${error.decidedBy ?? 'an approver'}: ${error.reason || '(no reason given)'}`);
      return 2;
    }
    if (error instanceof ApprovalExpiredError) {
      console.error('the approval expired before anyone decided');
      return 3;
    }
    if (error instanceof ApprovalWaitTimeoutError) {
      console.error(error.message);
      return 4;
    }
    if (error instanceof ApprovalRevokedByPolicyError) {
      // Approved, but the policy changed and the live policy refused it: submit it again to ask anew.
      console.error(error.message);
      return 5;
    }
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
