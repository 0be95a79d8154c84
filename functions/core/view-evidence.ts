/**
 * The approval view as evidence, re-checked by the verifiers (`oc verify`, the archive verifier):
 * every `toolcall.decided` fact that asked for an approval carries the request, the risk, the
 * policy's reason, the expiry and the view's version and hash, so the view is re-rendered from the
 * recorded request with the recorded version (every retired version stays in
 * `core/approval-view.ts` with its table) and its hash compared; every `approval.decided` fact must
 * name that same view (or, for a legacy approval, the view its request renders in the version it
 * names). An auditor can so prove what each human was shown. Pure: records in, problems out.
 */
import { buildApprovalView, LEGACY_VIEW, viewHash, type ApprovalViewSource } from './approval-view.js';

type Rec = Record<string, unknown>;

interface Known {
  source: ApprovalViewSource;
  view?: { version: string; hash: string };
}

/** Walks a tenant's records in chain order; `check` answers a problem, or undefined. */
export class ViewEvidence {
  /** Views re-rendered and found equal to the recorded hash. */
  checked = 0;
  private readonly approvals = new Map<string, Known>();

  check(record: Rec): string | undefined {
    if (record.kind === 'toolcall.decided') return this.requested(record);
    // A quorum's votes (issue 21) name the view each voter was shown, like a decision.
    if ((record.kind === 'approval.decided' || record.kind === 'approval.vote') && record.view !== undefined)
      return this.decided(record);
    if (record.kind === 'approval.edited') return this.edited(record);
    return undefined;
  }

  /**
   * An edit-on-approve (`core/edit.ts`): it must name the view the editor was shown, and its new
   * view is re-rendered from the edited request it records; later decisions name that one.
   */
  private edited(record: Rec): string | undefined {
    const id = String(record.approval_id);
    const request = record.request as Rec | undefined;
    const view = record.view as Rec | undefined;
    const was = record.edited_view as Rec | undefined;
    const known = this.approvals.get(id);
    if (known?.view && was && (known.view.version !== was.version || known.view.hash !== was.hash))
      return `the edit of approval ${id} names view ${String(was.version)} sha256:${String(was.hash)}, not the view its approval showed`;
    if (!request || !view) return `the edit of approval ${id} records no request or view`;
    const source = {
      tool: request.tool,
      action: request.action,
      resource: request.resource ?? '',
      params: request.params ?? {},
      risk_score: request.risk_score,
      ...(record.risk ? { risk: record.risk } : {}),
      reason: record.reason,
      agent_id: request.agent_id,
      user_id: request.user_id ?? '',
      expires_at: record.expires_at,
    } as ApprovalViewSource;
    this.approvals.set(id, { source, view: { version: String(view.version), hash: String(view.hash) } });
    const problem = this.rerender(source, String(view.version), view.hash);
    return problem && `the edit of approval ${id}: ${problem}`;
  }

  private requested(record: Rec): string | undefined {
    const approval = record.approval as Rec | undefined;
    const request = record.request as Rec | undefined;
    if (!approval || typeof approval.id !== 'string' || !request) return undefined;
    // As recorded: a field of the wrong type renders as what it is, and its hash will not match.
    const source = {
      tool: request.tool,
      action: request.action,
      resource: request.resource ?? '',
      params: request.params ?? {},
      risk_score: request.risk_score,
      ...(record.risk ? { risk: record.risk } : {}),
      reason: record.reason,
      agent_id: request.agent_id,
      user_id: request.user_id ?? '',
      expires_at: approval.expires_at,
      // An upstream tool's claims (issue 25), recorded with the approval: part of what was shown.
      ...(approval.upstream_claims !== undefined ? { upstream_claims: approval.upstream_claims } : {}),
    } as ApprovalViewSource;
    const view = approval.view as Rec | undefined;
    this.approvals.set(approval.id, {
      source,
      ...(view && view.version !== LEGACY_VIEW
        ? { view: { version: String(view.version), hash: String(view.hash) } }
        : {}),
    });
    if (!view || view.version === LEGACY_VIEW) return undefined;
    const problem = this.rerender(source, String(view.version), view.hash);
    return problem && `approval ${approval.id}: ${problem}`;
  }

  private decided(record: Rec): string | undefined {
    const id = String(record.approval_id);
    const view = record.view as Rec;
    const known = this.approvals.get(id);
    // Its request is before the walk's start (a partial archive): nothing to compare with.
    if (!known) return undefined;
    if (view.version === LEGACY_VIEW) {
      // A legacy approval was shown its stored request, rendered (without the risk it did not store).
      const { risk: _risk, ...stored } = known.source;
      const problem = this.rerender(stored, String(view.rendered), view.hash);
      return problem && `the decision on approval ${id}: ${problem}`;
    }
    if (!known.view || known.view.version !== view.version || known.view.hash !== view.hash)
      return `the decision on approval ${id} names view ${String(view.version)} sha256:${String(view.hash)}, not the view its request recorded`;
    return undefined;
  }

  private rerender(source: ApprovalViewSource, version: string, hash: unknown): string | undefined {
    let rendered: string;
    try {
      rendered = viewHash(buildApprovalView(source, version));
    } catch (error) {
      return /unknown approval view version/.test(String(error))
        ? `its view version ${JSON.stringify(version)} is unknown to this verifier`
        : 'its recorded request cannot be rendered as a view';
    }
    if (rendered !== hash)
      return `its recorded view hash ${String(hash)} is not the hash of the view its request renders in ${version} (${rendered})`;
    this.checked += 1;
    return undefined;
  }
}
