/**
 * `oc policy`: changing policy without fear (issue 24). `shadow-report` summarizes what shadow
 * mode recorded: the calls a deployed candidate (`policy/shadow/`) would have decided otherwise,
 * per tenant, action and transition, with example event ids.
 */
import type { Command } from 'commander';
import { ShadowSummarizer, type ShadowSummary } from '../../../functions/core/shadow.js';
import { ShadowDiffStore } from '../../../functions/store/shadow-diffs.js';
import { isoTime, tenantId } from '../args.js';
import { examples, type Act } from '../context.js';
import { addTargetOptions, type TargetOptions } from '../target.js';

interface ShadowReportOptions extends TargetOptions {
  tenant?: string;
  since?: string;
  json?: boolean;
}

export function registerPolicy(program: Command, act: Act): void {
  const policy = program
    .command('policy')
    .description('see what a candidate policy would change before enforcing it');
  examples(policy, ['npx oc policy shadow-report --help']);
  registerShadowReport(policy, act);
}

function registerShadowReport(policy: Command, act: Act): void {
  const report = policy
    .command('shadow-report')
    .description(
      'the live calls a shadow candidate (policy/shadow/) would have decided otherwise: counts per tenant, action and transition, with example event ids',
    )
    .option('--tenant <tenant>', 'only this tenant (default: every tenant with recorded decisions)', tenantId)
    .option('--since <time>', 'only calls decided at or after this ISO time (default: all recorded)', isoTime)
    .option('--json', 'print the summary as JSON');
  addTargetOptions(report);
  report.addHelpText(
    'after',
    '\nReads the sparse index entries shadow mode writes on the events it recorded a difference on\n' +
      "(by tenant and time), and those events' shadow attribute; tenants come from the chain registry.\n" +
      'No table scan. A call the candidate decided like the live policy is not recorded, nor counted.',
  );
  examples(report, [
    'npx oc policy shadow-report',
    'npx oc policy shadow-report --tenant tenant1 --since 2026-12-01T00:00:00Z',
    'npx oc policy shadow-report --aws --json > shadow.json',
  ]);
  act(
    report,
    (opts: ShadowReportOptions) =>
      `read the shadow differences of ${opts.tenant ? `tenant ${opts.tenant}` : 'every tenant'}`,
    async (opts: ShadowReportOptions, ctx) => {
      const { doc, table } = await ctx.table(opts);
      const store = new ShadowDiffStore(doc, table);
      const tenants = opts.tenant ? [opts.tenant] : await store.tenants();
      const summarizer = new ShadowSummarizer();
      for (const tenant of tenants)
        for await (const page of store.diffs(tenant, opts.since)) for (const d of page) summarizer.add(d);
      const summary = summarizer.summary(tenants, opts.since);
      if (opts.json) ctx.json(summary);
      else for (const line of summaryLines(summary)) ctx.out(line);
    },
  );
}

/** The readable report: totals by transition, then one line per tenant, action and transition. */
export function summaryLines(s: ShadowSummary): string[] {
  const scope = `${s.tenants.length === 1 ? `tenant ${s.tenants[0]}` : `${s.tenants.length} tenant(s)`}${s.since ? ` since ${s.since}` : ''}`;
  if (s.total === 0) return [`no shadow differences recorded (${scope})`];
  const lines = [
    `${s.total} call(s) the shadow candidate would have decided otherwise (${scope}):`,
    ...Object.entries(s.by_transition).map(([t, n]) => `  ${t.padEnd(16)} ${n}`),
    '',
    `${'tenant'.padEnd(16)} ${'action'.padEnd(28)} ${'transition'.padEnd(16)} ${'count'.padStart(7)}  examples`,
  ];
  for (const r of s.rows)
    lines.push(
      `${r.tenant_id.padEnd(16)} ${r.action.padEnd(28)} ${r.transition.padEnd(16)} ${String(r.count).padStart(7)}  ${r.examples.join(' ')}`,
    );
  const versions = [...new Set(s.rows.flatMap((r) => r.candidate_versions))];
  lines.push('', `candidate version(s): ${versions.join(', ')}`);
  return lines;
}
