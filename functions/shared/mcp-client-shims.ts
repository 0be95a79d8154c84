/**
 * What `@modelcontextprotocol/client/_shims` resolves to in the Lambda bundles (an esbuild alias,
 * `lib/function.ts`), as `mcp-shims.ts` does for the server package: the client's Node shim with
 * the lighter JSON Schema validator instead of Ajv. The upstream connector gives the client that
 * validator itself (`connectors/mcp-upstream.ts`), so Ajv would only be dead weight in its bundle.
 * Locally (tsx, jest) the client's own Node shim is used.
 */
export { CfWorkerJsonSchemaValidator as DefaultJsonSchemaValidator } from '@modelcontextprotocol/client/validators/cf-worker';
/** Node has no CORS: a `TypeError` from fetch is a real network error (as the client's Node shim says). */
export const CORS_IS_POSSIBLE = false;
