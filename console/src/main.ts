/**
 * The approval console: a small single-page app served from the API at /console. It signs the
 * approver in (locally a dev token for an allowlisted email; deployed, the OIDC provider with
 * authorization code + PKCE), lists the tenant's approvals and decides them through the same API
 * routes as everyone else. Everything shown is built with text nodes (never HTML from data), the
 * token lives in sessionStorage (never in a URL), and the page runs under a strict CSP.
 */
import {
  api,
  ApiError,
  type Approval,
  type BatchItem,
  type Delivery,
  type Page,
  type StandingGrant,
} from './api.js';
import { session, signInDev, signInOidc, completeOidc, signOut, type ConsoleConfig } from './session.js';
import { h, clear, time, relative, duration } from './dom.js';

const BASE = '/console';
const REFRESH_MS = 10_000;
const PAGE_SIZE = 20;
const STATUSES = ['pending', 'approved', 'denied', 'expired', 'revoked_by_policy', 'withdrawn'] as const;

let config: ConsoleConfig = { auth: 'none' };
let refreshTimer: number | undefined;

const main = () => document.getElementById('main') as HTMLElement;

function stopRefresh(): void {
  if (refreshTimer !== undefined) window.clearInterval(refreshTimer);
  refreshTimer = undefined;
}

function navigate(path: string): void {
  history.pushState(null, '', path);
  void route();
}

/** In-app links: ordinary anchors (open in a new tab works), handled without a reload. */
function link(path: string, text: string, className?: string): HTMLAnchorElement {
  const a = h('a', { href: path, className }, text);
  a.addEventListener('click', (e) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(path);
  });
  return a;
}

function showWho(): void {
  const who = document.getElementById('who') as HTMLElement;
  const s = session();
  who.hidden = !s;
  (document.getElementById('who-name') as HTMLElement).textContent = s ? `${s.email} · ${s.tenantId}` : '';
}

function render(...nodes: Node[]): void {
  const m = main();
  clear(m);
  m.append(...nodes);
  showWho();
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function signInView(message?: string): void {
  stopRefresh();
  const notice = message ? h('p', { className: 'notice', role: 'alert' }, message) : null;
  if (config.auth === 'dev') {
    const email = h('input', {
      id: 'email',
      type: 'email',
      name: 'email',
      required: true,
      autocomplete: 'email',
      placeholder: 'alice@acme.example',
    });
    const error = h('p', { className: 'error', role: 'alert' });
    const form = h(
      'form',
      { className: 'card signin' },
      h('h1', {}, 'Sign in'),
      h('p', { className: 'muted' }, 'Local stack: a dev token for an approver on a tenant’s allowlist.'),
      h('label', { htmlFor: 'email' }, 'Approver email'),
      email,
      h('button', { type: 'submit', className: 'primary' }, 'Sign in (local dev)'),
      error,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      error.textContent = '';
      signInDev(email.value.trim())
        .then(() => route())
        .catch((err: unknown) => (error.textContent = describe(err)));
    });
    render(...(notice ? [notice] : []), form);
    email.focus();
    return;
  }
  if (config.auth === 'oidc') {
    const button = h('button', { type: 'button', className: 'primary' }, 'Sign in');
    button.addEventListener('click', () => {
      signInOidc(config, location.pathname).catch((err: unknown) => signInView(describe(err)));
    });
    render(
      ...(notice ? [notice] : []),
      h('section', { className: 'card signin' }, h('h1', {}, 'Sign in'), button),
    );
    button.focus();
    return;
  }
  render(
    h(
      'section',
      { className: 'card' },
      h('h1', {}, 'Sign-in is not configured'),
      h('p', {}, 'This deployment has no approver identity provider (approverIssuer / approverAudience).'),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// List

interface ListState {
  status: (typeof STATUSES)[number];
  tool: string;
  agent: string;
  items: Approval[];
  cursor?: string;
  /** Pending approvals ticked for a batch decision, by id. */
  selected: Set<string>;
}

function listState(): ListState {
  const q = new URLSearchParams(location.search);
  const status = STATUSES.find((s) => s === q.get('status')) ?? 'pending';
  return { status, tool: q.get('tool') ?? '', agent: q.get('agent') ?? '', items: [], selected: new Set() };
}

/** At most this many approvals in one batch (the API's bound). */
const BATCH_MAX = 50;

function listPath(s: Pick<ListState, 'status' | 'tool' | 'agent'>): string {
  const q = new URLSearchParams();
  if (s.status !== 'pending') q.set('status', s.status);
  if (s.tool) q.set('tool', s.tool);
  if (s.agent) q.set('agent', s.agent);
  const qs = q.toString();
  return `${BASE}${qs ? `?${qs}` : ''}`;
}

const matches = (a: Approval, s: ListState) =>
  (!s.tool || `${a.tool}.${a.action}`.includes(s.tool.toLowerCase())) &&
  (!s.agent || a.agent_id.toLowerCase().includes(s.agent.toLowerCase()));

async function listView(): Promise<void> {
  const s = listState();
  const statusSelect = h(
    'select',
    { id: 'f-status', name: 'status' },
    ...STATUSES.map((st) => h('option', { value: st, selected: st === s.status }, shownStatus(st))),
  );
  const toolInput = h('input', { id: 'f-tool', name: 'tool', value: s.tool, placeholder: 'jira.issue' });
  const agentInput = h('input', { id: 'f-agent', name: 'agent', value: s.agent, placeholder: 'agent-1' });
  const filters = h(
    'form',
    { className: 'filters', role: 'search' },
    h('label', { htmlFor: 'f-status' }, 'Status'),
    statusSelect,
    h('label', { htmlFor: 'f-tool' }, 'Tool'),
    toolInput,
    h('label', { htmlFor: 'f-agent' }, 'Agent'),
    agentInput,
    h('button', { type: 'submit' }, 'Filter'),
  );
  const apply = () =>
    navigate(
      listPath({
        status: statusSelect.value as ListState['status'],
        tool: toolInput.value,
        agent: agentInput.value,
      }),
    );
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    apply();
  });
  statusSelect.addEventListener('change', apply);

  const body = h('div', { id: 'list', 'aria-live': 'polite' }, h('p', { className: 'muted' }, 'Loading…'));
  const more = h('button', { type: 'button', id: 'more', hidden: true }, 'Load more');
  const label = shownStatus(s.status);
  const heading = h('h1', {}, `${label[0]?.toUpperCase()}${label.slice(1)} approvals`);
  // Batch decisions: tick pending approvals, then review every one's full view before one confirm.
  const review = h(
    'button',
    { type: 'button', id: 'review-selected', disabled: true },
    'Review selected (0)',
  );
  const batchBar = h('div', { className: 'batch-bar', hidden: s.status !== 'pending' }, review);
  const updateReview = () => {
    review.textContent = `Review selected (${s.selected.size})`;
    review.disabled = s.selected.size === 0;
  };
  review.addEventListener('click', () => {
    const chosen = s.items.filter((a) => s.selected.has(a.id));
    if (chosen.length > 0) void batchReview(chosen.map((a) => a.id)).catch(onError);
  });
  render(
    h('section', { className: 'card' }, heading, filters, batchBar, body, more),
    h('p', {}, link(`${BASE}/grants`, 'Standing grants', 'grants-link')),
  );

  const toggle = (a: Approval, on: boolean) => {
    if (on && s.selected.size < BATCH_MAX) s.selected.add(a.id);
    else s.selected.delete(a.id);
    updateReview();
  };
  const draw = () => {
    clear(body);
    const shown = s.items.filter((a) => matches(a, s));
    // A ticked approval no longer pending (decided elsewhere) leaves the selection.
    for (const id of s.selected) if (!shown.some((a) => a.id === id)) s.selected.delete(id);
    if (shown.length === 0) body.append(h('p', { className: 'muted empty' }, `No ${label} approvals.`));
    else
      body.append(
        h(
          'ul',
          { className: 'items' },
          ...shown.map((a) => listItem(a, s.status === 'pending' ? { s, toggle } : undefined)),
        ),
      );
    more.hidden = !s.cursor;
    updateReview();
  };
  const load = async (cursor?: string) => {
    const page: Page = await api.list(s.status, PAGE_SIZE, cursor);
    s.items = cursor ? [...s.items, ...page.items] : page.items;
    s.cursor = page.next_cursor;
    draw();
  };
  more.addEventListener('click', () => void load(s.cursor).catch(onError));
  await load().catch(onError);
  stopRefresh();
  // Only the first page refreshes itself: a reader paging back is not pulled to the top.
  refreshTimer = window.setInterval(() => {
    if (!s.cursor || s.items.length <= PAGE_SIZE) void load().catch(onError);
  }, REFRESH_MS);
}

function listItem(
  a: Approval,
  select?: { s: ListState; toggle: (a: Approval, on: boolean) => void },
): HTMLElement {
  let box: HTMLInputElement | null = null;
  if (select) {
    box = h('input', {
      type: 'checkbox',
      className: 'select',
      checked: select.s.selected.has(a.id),
      'aria-label': `Select ${a.tool}.${a.action} ${a.view.act}`,
    });
    const b = box;
    b.addEventListener('change', () => {
      select.toggle(a, b.checked);
      b.checked = select.s.selected.has(a.id);
    });
  }
  return h(
    'li',
    { className: `item status-${a.status}`, dataset: { approvalId: a.id } },
    h(
      'div',
      { className: 'item-head' },
      box,
      link(`${BASE}/approvals/${a.id}`, `${a.tool}.${a.action}`, 'item-title'),
      h('span', { className: `badge ${a.status}` }, shownStatus(a.status)),
    ),
    // The view's target line: invisible characters shown as ⟨U+…⟩, as on every surface.
    h(
      'div',
      { className: 'item-resource' },
      a.view.lines.find((l) => l.startsWith('Target: '))?.slice('Target: '.length) ?? '(no resource)',
    ),
    h(
      'div',
      { className: 'item-meta muted' },
      `risk ${a.risk_score} · agent ${a.agent_id || '—'} · requester ${a.user_id || '—'} · `,
      h('time', { dateTime: a.created_at, title: time(a.created_at) }, relative(a.created_at)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Batch review: every selected approval's full view, read fresh, above one confirm. Each item is
// decided on the view shown here (its hash goes with it): one that changed meanwhile is refused alone.

async function batchReview(ids: string[]): Promise<void> {
  stopRefresh();
  const back = link(BASE, '← Approvals', 'back');
  const section = h('section', { className: 'card batch' }, back, h('p', { className: 'muted' }, 'Loading…'));
  render(section);
  const shown: Approval[] = [];
  for (const id of ids) {
    const a = await api.get(id).catch(() => undefined);
    if (a && a.status === 'pending') shown.push(a);
  }
  const note = h('textarea', { id: 'batch-note', name: 'note', rows: 2, maxLength: 1000 });
  const approve = h(
    'button',
    { type: 'button', className: 'primary', id: 'batch-approve' },
    `Approve all ${shown.length}`,
  );
  const deny = h(
    'button',
    { type: 'button', className: 'danger', id: 'batch-deny' },
    `Deny all ${shown.length}`,
  );
  const answer = h('div', { id: 'batch-answer', role: 'status', 'aria-live': 'polite' });
  const articles = shown.map((a, i) =>
    h(
      'article',
      { className: 'batch-item', dataset: { approvalId: a.id } },
      h('h2', {}, `${i + 1} of ${shown.length}: ${a.tool}.${a.action}`),
      h('pre', { className: 'view params', tabIndex: 0 }, a.view.lines.join('\n')),
      h('p', { className: 'muted view-hash' }, `${a.view.version} · sha256:${a.view.hash}`),
      h('p', { className: 'batch-outcome' }),
    ),
  );
  clear(section);
  section.append(
    back,
    h('h1', {}, `Review ${shown.length} pending approval${shown.length === 1 ? '' : 's'}`),
    h(
      'p',
      { className: 'muted' },
      'Each one is decided on the view shown here, on its own: one that changed or was decided meanwhile is refused alone.',
    ),
    ...(shown.length < ids.length
      ? [
          h(
            'p',
            { className: 'notice' },
            `${ids.length - shown.length} selected approval(s) are no longer pending and are left out.`,
          ),
        ]
      : []),
    ...articles,
    h(
      'form',
      { className: 'decide' },
      h('label', { htmlFor: 'batch-note' }, 'Comment (approve) or reason (deny), optional, for every item'),
      note,
      h('div', { className: 'buttons' }, approve, deny),
      answer,
    ),
  );
  const decide = (decision: 'approve' | 'deny') => {
    approve.disabled = deny.disabled = true;
    answer.textContent = decision === 'approve' ? 'Approving…' : 'Denying…';
    api
      .batch(
        decision,
        shown.map((a) => ({ id: a.id, viewHash: a.view.hash })),
        note.value.trim(),
      )
      .then((r) => {
        answer.textContent = `${r.decided} decided, ${r.voted ? `${r.voted} voted (a quorum needs more), ` : ''}${r.refused} refused.`;
        answer.className = r.refused === 0 ? 'ok' : 'error';
        r.results.forEach((item, i) => {
          const out = articles[i]?.querySelector('.batch-outcome');
          if (out) {
            out.textContent = batchOutcome(item);
            out.className = `batch-outcome ${item.status === 200 ? 'ok' : 'error'}`;
          }
        });
      })
      .catch((err: unknown) => {
        answer.className = 'error';
        answer.textContent = describe(err);
        approve.disabled = deny.disabled = false;
      });
  };
  approve.addEventListener('click', () => decide('approve'));
  deny.addEventListener('click', () => decide('deny'));
}

function batchOutcome(item: BatchItem): string {
  if ('approval' in item)
    return item.result === 'voted'
      ? `Your vote counted: ${item.progress ?? 'the quorum needs more'}.`
      : outcomeText(item.approval);
  return describe(new ApiError(item.status, item.error.code, item.error.message, item.error));
}

// ---------------------------------------------------------------------------------------------
// Detail

function field(label: string, value: Node | string): HTMLElement[] {
  return [h('dt', {}, label), h('dd', {}, value)];
}

async function detailView(id: string): Promise<void> {
  stopRefresh();
  const back = link(BASE, '← Approvals', 'back');
  const section = h(
    'section',
    { className: 'card detail' },
    back,
    h('p', { className: 'muted' }, 'Loading…'),
  );
  render(section);
  const draw = async () => {
    let a: Approval;
    try {
      a = await api.get(id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        stopRefresh();
        clear(section);
        section.append(
          back,
          h('h1', {}, 'Approval not found'),
          h('p', {}, 'There is no approval with this id for your tenant.'),
        );
        return;
      }
      throw err;
    }
    const deliveries = await api.deliveries(id).catch(() => undefined);
    clear(section);
    section.append(back, ...detailBody(a, deliveries));
    if (a.status !== 'pending') stopRefresh();
  };
  await draw().catch(onError);
  refreshTimer = window.setInterval(() => {
    // Never redraw under someone typing a comment.
    if (!document.activeElement?.closest('.decide')) void draw().catch(onError);
  }, REFRESH_MS);
}

function detailBody(a: Approval, deliveries: Delivery[] | undefined): Node[] {
  const facts = a.facts ?? [];
  return [
    h(
      'div',
      { className: 'detail-head' },
      h('h1', {}, `${a.tool}.${a.action}`),
      h('span', { id: 'status', className: `badge ${a.status}` }, shownStatus(a.status)),
    ),
    // What will run, above the buttons: the approval view every surface shows (target, every
    // param, invisible characters as ⟨U+…⟩), rendered by the server, never rebuilt here.
    h('h2', {}, 'What you decide on'),
    h('pre', { id: 'view', className: 'view params', tabIndex: 0 }, a.view.lines.join('\n')),
    h(
      'p',
      { className: 'muted view-hash' },
      `${a.view.version}${a.view.recorded === 'legacy' ? ' (legacy approval: rendered now)' : ''} · sha256:${a.view.hash}`,
    ),
    ...(a.quorum ? quorumBlock(a.quorum) : []),
    a.status === 'pending' ? decideForm(a) : h('p', { className: `outcome ${a.status}` }, outcomeText(a)),
    ...(a.status === 'pending' && a.editable_params?.length ? [editForm(a)] : []),
    ...(a.edit
      ? [
          h('h2', {}, 'Edited by an approver'),
          h(
            'p',
            { id: 'edit-summary' },
            `Edited ${a.edit.count} time${a.edit.count === 1 ? '' : 's'}, last by ${a.edit.edited_by} (${time(a.edit.edited_at)})${a.edit.comment ? `: ${a.edit.comment}` : ''}. Who edited may not approve: ${a.edit.editors.join(', ') || '—'}.`,
          ),
          h(
            'pre',
            { id: 'edit-patch', className: 'view' },
            a.edit.patch
              .map((op) => `${op.op} ${op.path}${'value' in op ? ` = ${JSON.stringify(op.value)}` : ''}`)
              .join('\n'),
          ),
        ]
      : []),
    h(
      'dl',
      { className: 'fields' },
      ...field('Policy version', a.policy_version ?? '—'),
      ...field('Approver group', a.approver_group || '(none)'),
      ...field('Requested', time(a.created_at)),
      ...field(a.status === 'expired' ? 'Expired' : 'Expires', time(a.expires_at)),
      ...(a.decided_by ? field('Decided by', a.decided_by) : []),
      ...(a.decided_at ? field('Decided at', time(a.decided_at)) : []),
      ...(a.comment ? field('Comment', a.comment) : []),
      ...(a.deny_reason ? field('Deny reason', a.deny_reason) : []),
      ...(a.grant
        ? field(
            'Grant',
            `${a.status === 'revoked_by_policy' ? 'revoked, never used' : a.grant.uses_left ? 'unused' : 'used'}, expires ${time(a.grant.expires_at)}`,
          )
        : []),
      ...(a.reminded_at ? field('Reminded', time(a.reminded_at)) : []),
      ...(a.extensions ?? []).flatMap((x) =>
        field('Extended', `by ${x.by} at ${time(x.at)}: ${time(x.from)} → ${time(x.to)}`),
      ),
      ...(a.standing_grant
        ? field(
            'Standing grant',
            `${a.standing_grant.target_pattern}, up to ${a.standing_grant.max_uses} uses until ${time(a.standing_grant.expires_at)}`,
          )
        : []),
      ...field('Event', a.event_id),
    ),
    h('h2', {}, 'Evidence chain'),
    facts.length === 0
      ? h('p', { className: 'muted' }, 'No facts recorded yet.')
      : h(
          'ol',
          { className: 'facts' },
          ...facts.map((f) =>
            h(
              'li',
              {},
              h('code', {}, f.kind),
              ' ',
              f.seq === undefined ? h('span', { className: 'muted' }, 'not sealed yet') : `seq ${f.seq}`,
              h('span', { className: 'muted' }, ` · ${time(f.at)}`),
            ),
          ),
        ),
    h('h2', {}, 'Delivery status'),
    deliveryTable(deliveries),
  ];
}

/** A quorum's progress as the server words it, and who voted in each stage. */
function quorumBlock(q: NonNullable<Approval['quorum']>): HTMLElement[] {
  return [
    h('h2', {}, 'Approvals'),
    h('p', { id: 'quorum', className: 'quorum' }, q.summary),
    h(
      'ol',
      { className: 'stages' },
      ...q.stages.map((s, i) =>
        h(
          'li',
          {},
          `${q.stages.length > 1 ? `Stage ${i + 1}: ` : ''}${s.n} of ${s.group ?? 'any approver'}${s.complete ? ' (complete)' : i === q.current_stage ? ' (voting now)' : ''}: `,
          s.votes.length === 0
            ? h('span', { className: 'muted' }, 'no votes yet')
            : s.votes
                .map(
                  (v) =>
                    `${v.approver} (${v.via}, ${time(v.at)}${
                      // What the vote asked for: a standing grant needs every vote to ask.
                      v.standing_grant
                        ? `; asks for a standing grant: ${v.standing_grant.target_pattern}, up to ${v.standing_grant.max_uses} uses until ${time(v.standing_grant.expires_at)}`
                        : ''
                    })`,
                )
                .join(', '),
        ),
      ),
    ),
  ];
}

/** A state as people read it: `revoked_by_policy` -> "revoked by policy". */
const shownStatus = (status: string): string => status.replace(/_/g, ' ');

function outcomeText(a: Approval): string {
  if (a.status === 'pending' && a.quorum) return `Your vote is recorded: ${a.quorum.summary}.`;
  if (a.status === 'approved') return `Approved by ${a.decided_by ?? 'unknown'}.`;
  if (a.status === 'denied')
    return `Denied by ${a.decided_by ?? 'unknown'}${a.deny_reason ? `: ${a.deny_reason}` : '.'}`;
  if (a.status === 'revoked_by_policy') {
    const r = a.revocation;
    const why = r?.reapproval_required
      ? 'this tenant requires a new approval after a policy change'
      : `the live policy denies it${r?.reason ? ` (${r.reason})` : ''}`;
    return `Approved by ${a.decided_by ?? 'unknown'}, then revoked when the agent executed it: the policy changed and ${why}. The tool call did not run and never will.`;
  }
  if (a.status === 'withdrawn')
    return `Withdrawn by the agent (${a.decided_by ?? 'unknown'}) before anyone decided; the tool call did not run and never will.`;
  return 'This approval expired without a decision; the tool call will not run.';
}

function deliveryTable(deliveries: Delivery[] | undefined): HTMLElement {
  if (!deliveries) return h('p', { id: 'deliveries', className: 'muted' }, 'Delivery status unavailable');
  if (deliveries.length === 0)
    return h('p', { id: 'deliveries', className: 'muted' }, 'No notification routes.');
  return h(
    'table',
    { id: 'deliveries', className: 'deliveries' },
    h(
      'thead',
      {},
      h('tr', {}, ...['Route', 'Event', 'Status', 'Attempts', 'Last attempt'].map((t) => h('th', {}, t))),
    ),
    h(
      'tbody',
      {},
      ...deliveries.map((d) =>
        h(
          'tr',
          {},
          h(
            'td',
            { dataset: { label: 'Route' } },
            d.route.kind === 'slack' ? `Slack ${d.route.channel}` : `Webhook ${d.route.target}`,
          ),
          h('td', { dataset: { label: 'Event' } }, d.event_type.replace(/^oc\.approval\./, '')),
          h(
            'td',
            { dataset: { label: 'Status' } },
            h('span', { className: `badge ${d.status}` }, d.in_dlq ? `${d.status} (DLQ)` : d.status),
            d.last_error ? h('div', { className: 'muted' }, d.last_error) : '',
          ),
          h('td', { dataset: { label: 'Attempts' } }, String(d.attempts)),
          h(
            'td',
            { dataset: { label: 'Last attempt' } },
            d.last_attempt_at ? time(d.last_attempt_at) : '—',
            d.last_status_code ? ` (HTTP ${d.last_status_code})` : '',
          ),
        ),
      ),
    ),
  );
}

function decideForm(a: Approval): HTMLElement {
  const note = h('textarea', { id: 'note', name: 'note', rows: 3, maxLength: 1000 });
  // The button names the act ("Approve: delete PROD-42"), from the same view.
  const approve = h(
    'button',
    { type: 'button', className: 'primary', id: 'approve' },
    `Approve: ${a.view.act}`,
  );
  const deny = h('button', { type: 'button', className: 'danger', id: 'deny' }, 'Deny');
  // Issue 21: more time instead of a decision, by the step policy data allows now (`extend_sec`,
  // Slack's step: an hour, or less where the bound leaves less); not offered where it is off.
  const step = a.extend_sec;
  const extend = h('button', { type: 'button', id: 'extend' }, `Extend by ${duration(step ?? 0)}`);
  const answer = h('p', { id: 'answer', role: 'status', 'aria-live': 'polite' });
  const form = h(
    'form',
    { className: 'decide' },
    h('label', { htmlFor: 'note' }, 'Comment (approve) or reason (deny), optional'),
    note,
    h('div', { className: 'buttons' }, approve, deny, ...(step ? [extend] : [])),
    answer,
  );
  extend.addEventListener('click', () => {
    extend.disabled = true;
    answer.className = '';
    answer.textContent = 'Extending…';
    api
      .extend(a.id, step ?? 0, a.view.hash)
      .then((moved) => {
        answer.className = 'ok';
        answer.textContent = `Extended: now expires ${time(moved.expires_at)}.`;
        window.setTimeout(() => void detailView(a.id), 1_200);
      })
      .catch((err: unknown) => {
        answer.className = 'error';
        answer.textContent = describe(err);
        extend.disabled = false;
      });
  });
  form.addEventListener('submit', (e) => e.preventDefault());
  const decide = (decision: 'approve' | 'deny') => {
    approve.disabled = deny.disabled = true;
    answer.className = '';
    answer.textContent = decision === 'approve' ? 'Approving…' : 'Denying…';
    api
      .decide(a.id, decision, note.value.trim(), a.view.hash)
      .then((decided) => {
        answer.textContent = outcomeText(decided);
        answer.className = 'ok';
        window.setTimeout(() => void detailView(a.id), 1_200);
      })
      .catch((err: unknown) => {
        answer.className = 'error';
        answer.textContent = describe(err);
        approve.disabled = deny.disabled = false;
        if (err instanceof ApiError && (err.status === 409 || err.status === 410))
          window.setTimeout(() => void detailView(a.id), 2_500);
      });
  };
  approve.addEventListener('click', () => decide('approve'));
  deny.addEventListener('click', () => decide('deny'));
  return form;
}

/**
 * Edit instead of approving: one field per param this tenant lets an approver edit, filled with
 * the stored value (a string as typed, anything else as JSON). The server judges the edited call
 * again as a submitted one and answers with the approval on it (its view is then the one shown).
 */
function editForm(a: Approval): HTMLElement {
  const fields = (a.editable_params ?? []).map((name) => {
    const current = a.params[name];
    const asText =
      typeof current === 'string' ? current : current === undefined ? '' : JSON.stringify(current);
    const input = h('textarea', { id: `edit-${name}`, name, rows: 1, value: asText });
    return { name, current, asText, input };
  });
  const comment = h('input', { id: 'edit-comment', name: 'edit-comment', maxLength: 1000 });
  const submit = h('button', { type: 'submit', id: 'edit-submit' }, 'Submit edit (judged again by policy)');
  const answer = h('p', { id: 'edit-answer', role: 'status', 'aria-live': 'polite' });
  const form = h(
    'form',
    { className: 'decide edit' },
    h('h2', {}, 'Or edit it'),
    h(
      'p',
      { className: 'muted' },
      'The edited call is judged again by policy. If it still needs approval, someone else must approve it: you count as its requester.',
    ),
    ...fields.flatMap((f) => [h('label', { htmlFor: `edit-${f.name}` }, `params.${f.name}`), f.input]),
    h('label', { htmlFor: 'edit-comment' }, 'Why (optional)'),
    comment,
    h('div', { className: 'buttons' }, submit),
    answer,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params: Record<string, unknown> = {};
    try {
      for (const f of fields) {
        if (f.input.value === f.asText) continue;
        params[f.name] =
          typeof f.current === 'string' || f.current === undefined
            ? f.input.value
            : JSON.parse(f.input.value);
      }
    } catch {
      answer.className = 'error';
      answer.textContent = 'A non-text param must be valid JSON.';
      return;
    }
    if (Object.keys(params).length === 0) {
      answer.className = 'error';
      answer.textContent = 'Nothing changed: approve or deny it as it is.';
      return;
    }
    submit.disabled = true;
    answer.className = '';
    answer.textContent = 'Submitting the edit…';
    api
      .edit(a.id, params, a.view.hash, comment.value.trim())
      .then((edited) => {
        answer.className = 'ok';
        answer.textContent =
          edited.status === 'approved'
            ? 'Edited and approved: policy allows the edited call; the agent runs it.'
            : 'Edited: policy still requires approval, so someone else must approve the edited call.';
        window.setTimeout(() => void detailView(a.id), 1_200);
      })
      .catch((err: unknown) => {
        answer.className = 'error';
        answer.textContent = describe(err);
        submit.disabled = false;
      });
  });
  return form;
}

// ---------------------------------------------------------------------------------------------
// Standing grants (issue 21): what runs without a human now, and a Revoke that takes effect at once.

async function grantsView(): Promise<void> {
  stopRefresh();
  const body = h('div', { id: 'grants', 'aria-live': 'polite' }, h('p', { className: 'muted' }, 'Loading…'));
  render(
    h('p', {}, link(BASE, '← Approvals')),
    h('section', { className: 'card' }, h('h1', {}, 'Standing grants'), body),
  );
  const draw = (grants: StandingGrant[]) => {
    clear(body);
    if (grants.length === 0) body.append(h('p', { className: 'muted empty' }, 'No standing grants.'));
    else body.append(h('ul', { className: 'items' }, ...grants.map(grantItem)));
  };
  const grantItem = (g: StandingGrant): HTMLElement => {
    const revoke = h('button', { type: 'button', className: 'danger' }, 'Revoke');
    revoke.addEventListener('click', () => {
      revoke.disabled = true;
      void api
        .revokeGrant(g.id)
        .then(() => api.grants())
        .then(draw)
        .catch(onError);
    });
    return h(
      'li',
      { className: 'grant', dataset: { grant: g.id } },
      h('span', { className: `badge ${g.status}` }, g.status),
      ` ${g.agent_id} · ${g.tool}.${g.action} · ${g.target_pattern} · ${g.uses_left}/${g.max_uses} uses left · until ${time(g.expires_at)} · by ${g.created_by} `,
      link(`${BASE}/approvals/${g.approval_id}`, 'approval'),
      ...(g.status === 'active' ? [' ', revoke] : []),
    );
  };
  await api.grants().then(draw).catch(onError);
}

// ---------------------------------------------------------------------------------------------
// Errors and routing

/** What the server's answer means, in words. */
function describe(err: unknown): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : 'Something went wrong.';
  const detail = (path: string) => err.body?.details?.find((d) => d.path === path)?.message;
  switch (err.code) {
    case 'APPROVAL_ALREADY_DECIDED':
      return `Someone decided first: this approval is already ${detail('status') ?? 'decided'}${detail('decided_by') ? ` by ${detail('decided_by')}` : ''}. (409)`;
    case 'CONFLICT':
      return 'This approval no longer shows what you decided on: reload it, review it and decide again. (409)';
    case 'APPROVAL_EXPIRED':
      return 'Too late: this approval expired before your decision arrived. (410)';
    case 'ALREADY_VOTED':
      return 'You have already voted on this approval (here or in Slack): someone else must cast the next vote. (409)';
    case 'SELF_APPROVAL':
      return 'You requested this tool call, so someone else must decide it (separation of duties). (403)';
    case 'APPROVER_NOT_ALLOWED':
      // A listed approver outside a quorum's current stage: the server says which stage needs whom.
      if (detail('stage')) return `Your vote was not recorded: ${err.message}. (403)`;
      return 'You are not on this tenant’s approver list. (403)';
    case 'EDIT_DENIED':
      return `Policy denies the edited call (${detail('reason') ?? 'no reason given'}): the edit was refused and nothing changed. (403)`;
    case 'EDIT_NOT_ALLOWED':
      return 'This tenant’s policy lets no approver edit this action. (403)';
    case 'NOT_FOUND':
      return 'There is no such approval for your tenant. (404)';
    case 'VALIDATION_ERROR':
      return `The server refused the input: ${err.body?.details?.[0]?.message ?? err.message}. (422)`;
    default:
      return `${err.message} (${err.status})`;
  }
}

function onError(err: unknown): void {
  if (err instanceof ApiError && err.status === 401) {
    signOut();
    signInView('Your session ended; sign in again.');
    return;
  }
  const m = main();
  m.querySelector('.error.global')?.remove();
  m.prepend(h('p', { className: 'error global', role: 'alert' }, describe(err)));
}

async function route(): Promise<void> {
  const path = location.pathname.replace(/\/+$/, '');
  if (path === `${BASE}/callback`) {
    try {
      navigateReplace(await completeOidc(config));
    } catch (err) {
      history.replaceState(null, '', BASE);
      signInView(describe(err));
      return;
    }
  }
  if (!session()) return signInView();
  const detail = new RegExp(`^${BASE}/approvals/([0-9a-f-]{36})$`).exec(
    location.pathname.replace(/\/+$/, ''),
  );
  if (detail?.[1]) return detailView(detail[1]);
  if (location.pathname.replace(/\/+$/, '') === `${BASE}/grants`) return grantsView();
  return listView();
}

function navigateReplace(path: string): void {
  history.replaceState(null, '', path.startsWith(`${BASE}/`) || path === BASE ? path : BASE);
}

async function start(): Promise<void> {
  config = await api.config();
  window.addEventListener('popstate', () => void route());
  (document.getElementById('sign-out') as HTMLElement).addEventListener('click', () => {
    signOut();
    navigate(BASE);
  });
  await route();
}

start().catch(onError);
