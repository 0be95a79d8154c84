/** A policy folder for edit-on-approve tests (issue 21): the shipped one, plus editable params and two rules. */
import { appendFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultPolicyDir } from '../../functions/store/policy-files.js';

/** The shipped policy, plus: tenant1 may edit a Slack post's text and channel; #all-hands needs approval; #exec is forbidden. */
export function editPolicyDir(base: string = process.env.OC_TEST_TMP!): string {
  const dir = mkdtempSync(path.join(base, 'policy-edit-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  const file = path.join(dir, 'tenants.json');
  const tenants = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  tenants.tenant1!.editable_params = { 'slack.msg.post': ['text', 'channel'] };
  tenants.tenant2!.editable_params = { 'slack.msg.post': ['text'] };
  writeFileSync(file, JSON.stringify(tenants, null, 2));
  appendFileSync(
    path.join(dir, 'policies.cedar'),
    `
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
