/**
 * POST /v1/approvals/{approval_id}/approve: the verified approver approves; a single-use grant is
 * issued (or, for a quorum, their vote is cast). The same Lambda serves
 * POST /v1/approvals/{approval_id}/withdraw-vote: the approver takes back their quorum vote while
 * its stage is incomplete (issue 21), so that route costs no function of its own.
 */
import { withdrawMyVote } from '../core/approvals.js';
import { httpRoute, parseRequest, requireApprover, type HttpEvent } from '../shared/http.js';
import { lambda } from '../shared/middleware.js';
import { appState, warmInLambda, type AppState } from './app-state.js';
import { apiApprover, approvalDeps, decisionRoute } from './approvals-state.js';
import { authenticated } from './authentication.js';
import { WITHDRAW_VOTE_INPUT } from './inputs.js';

export const WITHDRAW_VOTE_ROUTE = 'POST /v1/approvals/{approval_id}/withdraw-vote';

export const withdrawVoteRoute = (getState: () => AppState) =>
  httpRoute(
    authenticated(getState, async (event: HttpEvent) => {
      const approver = requireApprover(event);
      const { path } = parseRequest(event, WITHDRAW_VOTE_INPUT);
      const view = await withdrawMyVote(approvalDeps(getState()), apiApprover(approver), path.approval_id);
      return { status: 200, body: JSON.stringify(view) };
    }),
  );

export const approveRoute = (getState: () => AppState) => {
  const approve = decisionRoute('approve')(getState);
  const withdrawVote = withdrawVoteRoute(getState);
  return (event: HttpEvent) =>
    event.routeKey === WITHDRAW_VOTE_ROUTE || event.rawPath?.endsWith('/withdraw-vote')
      ? withdrawVote(event)
      : approve(event);
};

warmInLambda((state) => state.approverTokens);
export const handler = lambda(approveRoute(appState));
