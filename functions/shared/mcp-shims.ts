/**
 * What `@modelcontextprotocol/server/_shims` resolves to in the Lambda bundles (an esbuild alias,
 * `lib/function.ts`): the SDK's Node shim with the SDK's own lighter JSON Schema validator, the one
 * it ships for Workers (`@cfworker/json-schema`, 20 KB instead of Ajv's 150 KB). The SDK uses it to
 * check form-elicitation answers and McpServer tool outputs; the gateway uses neither (its tools'
 * arguments are checked with the connectors' zod schemas), so the MCP bundle stays under 1 MB.
 * Locally (tsx, jest) the SDK's own Node shim is used.
 */
export { CfWorkerJsonSchemaValidator as DefaultJsonSchemaValidator } from '@modelcontextprotocol/server/validators/cf-worker';
export { default as process } from 'node:process';
