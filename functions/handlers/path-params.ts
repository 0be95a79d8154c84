/** Path parameters of the API: ids are lowercase UUIDs (v4, or v8 for event ids), anything else is a 400 before any read. */
import { UUID_PATTERN } from '../core/toolcall-view.js';
import { badRequest } from '../shared/errors.js';
import type { HttpEvent } from '../shared/http.js';

function uuidParam(event: HttpEvent, name: 'event_id' | 'approval_id'): string {
  const value = event.pathParameters?.[name] ?? '';
  if (!UUID_PATTERN.test(value)) {
    throw badRequest(`invalid ${name} format`, [{ path: name, message: 'must be a lowercase UUID' }]);
  }
  return value;
}

export const eventIdOf = (event: HttpEvent): string => uuidParam(event, 'event_id');
export const approvalIdOf = (event: HttpEvent): string => uuidParam(event, 'approval_id');
