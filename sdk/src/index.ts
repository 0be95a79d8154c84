/** @openclause/sdk: a typed client for the OpenClause gateway. */
export {
  createClient,
  OpenClauseClient,
  type ApprovalSummary,
  type CallOptions,
  type ClientOptions,
  type Decision,
  type ExecutionResponse,
  type ExecutionResult,
  type PendingInfo,
  type RetryOptions,
  type ToolCall,
  type ToolCallRecord,
  type ToolCallRequest,
  type ToolCallResponse,
  type WaitOptions,
  type Withdrawal,
} from './client.js';
export {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalRevokedByPolicyError,
  ApprovalWaitTimeoutError,
  ApprovalWithdrawnError,
  ExecutionOutcomeUnknownError,
  NotApprovalGatedError,
  OpenClauseApiError,
  OpenClauseError,
  OpenClauseNetworkError,
  type ErrorDetail,
} from './errors.js';
export type { components, paths } from './openapi.js';
