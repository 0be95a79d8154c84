/**
 * The published contract (api/openapi.yaml) as a test oracle: asserts that an HTTP response is
 * one the OpenAPI document allows. The tests' gateway client (gateway-client.ts) runs it on every
 * response a test receives.
 *
 * The document is read once; its component schemas are registered with Ajv (JSON Schema 2020-12,
 * the dialect of OpenAPI 3.1) under `urn:oc:schema:<Name>`, so validation errors name the
 * component and the keyword that failed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

export const OPENAPI_PATH = fileURLToPath(new URL('../../api/openapi.yaml', import.meta.url));

/** A response as a test observed it. */
export interface ObservedResponse {
  method: string;
  /** The concrete request path, e.g. `/v1/toolcalls/7c9e...`; a query string is ignored. */
  path: string;
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

/** One operation of the document, flattened for tests. */
export interface ContractOperation {
  method: string;
  path: string;
  operationId: string | undefined;
  /** Names of the security schemes that each satisfy the operation ([] = unauthenticated). */
  security: string[];
  operation: JsonObject;
}

type JsonObject = Record<string, unknown>;

const SCHEMA_REF_PREFIX = '#/components/schemas/';
const SCHEMA_ID_PREFIX = 'urn:oc:schema:';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** OpenAPI 3.1 schema keywords that JSON Schema 2020-12 does not define: annotations for Ajv. */
const OPENAPI_KEYWORDS = ['example', 'discriminator', 'xml', 'externalDocs'];

// ajv-formats is CommonJS; under NodeNext its default import is `module.exports`.
const addFormats = addFormatsModule.default;

interface Contract {
  doc: JsonObject;
  ajv: Ajv2020;
  validators: Map<string, ValidateFunction>;
  /** Where each (sub)schema object lives, e.g. `ToolCallRecord#/properties/evidence`, for error messages. */
  locations: WeakMap<object, string>;
}

let contract: Contract | undefined;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getContract(): Contract {
  if (contract) return contract;
  const doc: unknown = parseYaml(readFileSync(OPENAPI_PATH, 'utf8'));
  if (!isObject(doc) || typeof doc.openapi !== 'string' || !doc.openapi.startsWith('3.1')) {
    throw new Error(`${OPENAPI_PATH} is not an OpenAPI 3.1 document`);
  }
  const ajv = new Ajv2020({
    allErrors: true,
    // Unknown keywords and formats are errors; the rest of strict mode flags idioms OpenAPI
    // documents use on purpose (`required` restated in an allOf branch, `properties` without
    // `type` in a branch that narrows an object).
    strict: true,
    strictRequired: false,
    strictTypes: false,
    validateFormats: true,
    verbose: true, // errors carry their parentSchema, which `locations` names
  });
  addFormats(ajv);
  ajv.addVocabulary([...OPENAPI_KEYWORDS, ...collectExtensionKeywords(doc)]);
  const locations = new WeakMap<object, string>();
  const components = isObject(doc.components) ? doc.components : {};
  const schemas = isObject(components.schemas) ? components.schemas : {};
  for (const [name, schema] of Object.entries(schemas)) {
    if (!isObject(schema)) throw new Error(`components.schemas.${name} is not a schema object`);
    const registered = { ...(rewriteRefs(schema) as JsonObject), $id: SCHEMA_ID_PREFIX + name };
    indexLocations(registered, `${name}#`, locations);
    ajv.addSchema(registered);
  }
  contract = { doc, ajv, validators: new Map(), locations };
  return contract;
}

function indexLocations(v: unknown, pointer: string, into: WeakMap<object, string>): void {
  if (Array.isArray(v)) v.forEach((child, i) => indexLocations(child, `${pointer}/${i}`, into));
  else if (isObject(v)) {
    into.set(v, pointer);
    for (const [k, child] of Object.entries(v))
      indexLocations(child, `${pointer}/${encodePointerToken(k)}`, into);
  }
}

/** `x-...` specification extensions used inside schemas; Ajv must know them as annotations. */
function collectExtensionKeywords(doc: JsonObject): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (isObject(v)) {
      for (const [k, child] of Object.entries(v)) {
        if (k.startsWith('x-')) found.add(k);
        walk(child);
      }
    }
  };
  walk(doc);
  return [...found];
}

/** Points `#/components/schemas/X` references at the schema registered as `urn:oc:schema:X`. */
function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, child] of Object.entries(v)) {
    if (k === '$ref' && typeof child === 'string' && child.startsWith(SCHEMA_REF_PREFIX)) {
      out[k] = SCHEMA_ID_PREFIX + child.slice(SCHEMA_REF_PREFIX.length);
    } else {
      out[k] = rewriteRefs(child);
    }
  }
  return out;
}

function decodePointerToken(t: string): string {
  return t.replace(/~1/g, '/').replace(/~0/g, '~');
}

function encodePointerToken(t: string): string {
  return t.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Follows a local `$ref` (other than to a schema) to the object it names. */
function deref(doc: JsonObject, v: unknown, where: string): JsonObject {
  let current = v;
  for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
    const ref = current.$ref;
    if (hops > 16 || !ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref} at ${where}`);
    let target: unknown = doc;
    for (const token of ref.slice(2).split('/').map(decodePointerToken)) {
      target = isObject(target) ? target[token] : undefined;
    }
    if (target === undefined) throw new Error(`unresolved $ref ${ref} at ${where}`);
    current = target;
  }
  if (!isObject(current)) throw new Error(`expected an object at ${where}`);
  return current;
}

/** The parsed OpenAPI document (shared; do not mutate). */
export function openApiDocument(): Readonly<JsonObject> {
  return getContract().doc;
}

/** Every operation of the document. */
export function contractOperations(): ContractOperation[] {
  const { doc } = getContract();
  const paths = isObject(doc.paths) ? doc.paths : {};
  const globalSecurity = doc.security;
  const ops: ContractOperation[] = [];
  for (const [path, item] of Object.entries(paths)) {
    const pathItem = deref(doc, item, `#/paths/${encodePointerToken(path)}`);
    for (const method of HTTP_METHODS) {
      const operation = pathItem[method];
      if (!isObject(operation)) continue;
      const security = operation.security ?? globalSecurity ?? [];
      const schemes = Array.isArray(security)
        ? security.flatMap((req) => (isObject(req) ? Object.keys(req) : []))
        : [];
      ops.push({
        method: method.toUpperCase(),
        path,
        operationId: typeof operation.operationId === 'string' ? operation.operationId : undefined,
        security: schemes,
        operation,
      });
    }
  }
  return ops;
}

/** Finds the operation for a concrete path: literal templates win over parameterised ones. */
function findOperation(method: string, concretePath: string): ContractOperation {
  const path = concretePath.split('?')[0] ?? concretePath;
  const candidates = contractOperations().filter((op) => op.method === method.toUpperCase());
  const matches = candidates
    .map((op) => {
      const params = (op.path.match(/\{[^}]+\}/g) ?? []).length;
      // `x-oc-path-greedy`: the operation's last parameter is API Gateway's `{name+}` (slashes included).
      const greedy = op.operation['x-oc-path-greedy'] === true;
      const literals = op.path.split(/\{[^}]+\}/).map((lit) => lit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      const pattern = literals
        .map((lit, i) => (i === 0 ? lit : `${greedy && i === literals.length - 1 ? '.+' : '[^/]+'}${lit}`))
        .join('');
      return { op, params, matches: new RegExp(`^${pattern}$`).test(path) };
    })
    .filter((c) => c.matches)
    .sort((a, b) => a.params - b.params);
  const best = matches[0];
  if (!best) {
    const known = contractOperations()
      .map((op) => `${op.method} ${op.path}`)
      .join(', ');
    throw new Error(`contract: no operation for ${method.toUpperCase()} ${path} (documented: ${known})`);
  }
  return best.op;
}

/** Compiles (once) the schema found at `pointer` in the document. */
function compileAt(pointer: string, schema: unknown): ValidateFunction {
  const c = getContract();
  const cached = c.validators.get(pointer);
  if (cached) return cached;
  if (!isObject(schema) && typeof schema !== 'boolean') throw new Error(`contract: no schema at ${pointer}`);
  const rewritten = rewriteRefs(schema) as JsonObject | boolean;
  indexLocations(rewritten, pointer, c.locations);
  const validate = c.ajv.compile(rewritten);
  c.validators.set(pointer, validate);
  return validate;
}

/**
 * The compiled validator of a named component schema (`components.schemas[name]`), e.g.
 * `requestSchema('ToolCallRequest')`, for cross-checking the zod schemas against the contract.
 * It validates without applying defaults or mutating its input.
 */
export function requestSchema(name: string): ValidateFunction {
  const validate = getContract().ajv.getSchema(SCHEMA_ID_PREFIX + name);
  if (!validate) throw new Error(`contract: no component schema named ${name}`);
  return validate;
}

/** Human-readable Ajv errors: where in the instance, which schema keyword, what. */
export function formatErrors(errors: ErrorObject[] | null | undefined, subject = 'body'): string {
  const { locations } = getContract();
  const all = errors ?? [];
  const shown = all.slice(0, 20).map((e) => {
    const at = e.instancePath === '' ? subject : `${subject}${e.instancePath}`;
    const extra = e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : '';
    const owner = isObject(e.parentSchema) ? locations.get(e.parentSchema) : undefined;
    const where = owner === undefined ? e.schemaPath : `${owner}/${e.keyword}`;
    return `${at} ${e.message ?? 'is invalid'}${extra} [schema ${where}]`;
  });
  if (all.length > shown.length) shown.push(`... ${all.length - shown.length} more`);
  return shown.join('; ');
}

/**
 * Header extension: the header is required when the (error) body's `code` is one of these, e.g.
 * `Retry-After` on a 409 that shares its status between retryable and final codes.
 */
const REQUIRED_WITH_CODES = 'x-oc-required-with-codes';
/**
 * Header extension: the header is required when the (error) body says `retryable: true`, e.g.
 * `Retry-After` on a 409 whose one code is retryable or final depending on the case.
 */
const REQUIRED_WHEN_RETRYABLE = 'x-oc-required-when-retryable';

/** The JSON error body's fields, if the body is one. */
function errorBodyOf(body: string): { code?: unknown; retryable?: unknown } {
  try {
    const parsed: unknown = JSON.parse(body);
    return isObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

function headerValue(headers: Record<string, string | undefined>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === wanted && v !== undefined) return v;
  return undefined;
}

/** Header values are text; schemas describe the typed value (e.g. Retry-After is an integer). */
function coerceHeader(raw: string, schema: unknown): unknown {
  const type = isObject(schema) ? schema.type : undefined;
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(raw.trim()))
    return Number(raw.trim());
  if (type === 'boolean' && (raw === 'true' || raw === 'false')) return raw === 'true';
  return raw;
}

function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function mediaTypeMatches(range: string, actual: string): boolean {
  const [rt, rs] = range.toLowerCase().split('/');
  const [at, as] = actual.split('/');
  return (rt === '*' || rt === at) && (rs === '*' || rs === as);
}

/**
 * Throws unless the response is one the OpenAPI document allows for this method and path:
 * a documented status (or `NXX` / `default`), the documented content type family, a body that
 * validates against the schema, and every documented required header (with a valid value),
 * including headers required only with certain error codes (`x-oc-required-with-codes`) or
 * only on retryable errors (`x-oc-required-when-retryable`).
 */
export function assertMatchesContract(r: ObservedResponse): void {
  const { doc } = getContract();
  const op = findOperation(r.method, r.path);
  const label = `${op.method} ${op.path} -> ${r.status}`;
  const opPointer = `#/paths/${encodePointerToken(op.path)}/${op.method.toLowerCase()}`;
  const responses = isObject(op.operation.responses) ? op.operation.responses : {};
  const statusKey = [String(r.status), `${String(r.status).charAt(0)}XX`, 'default'].find(
    (k) => k in responses,
  );
  if (statusKey === undefined) {
    throw new Error(
      `contract: ${label}: status ${r.status} is not documented (documented: ${Object.keys(responses).join(', ')})`,
    );
  }
  const responsePointer = `${opPointer}/responses/${statusKey}`;
  const response = deref(doc, responses[statusKey], responsePointer);

  const headers = isObject(response.headers) ? response.headers : {};
  for (const [name, h] of Object.entries(headers)) {
    if (name.toLowerCase() === 'content-type') continue; // OpenAPI ignores it here
    const header = deref(doc, h, `${responsePointer}/headers/${name}`);
    const value = headerValue(r.headers, name);
    if (value === undefined) {
      if (header.required === true) throw new Error(`contract: ${label}: required header ${name} is missing`);
      const { code, retryable } = errorBodyOf(r.body);
      const requiredWith = header[REQUIRED_WITH_CODES];
      if (typeof code === 'string' && Array.isArray(requiredWith) && requiredWith.includes(code)) {
        throw new Error(
          `contract: ${label}: required header ${name} is missing (required with code ${code})`,
        );
      }
      if (header[REQUIRED_WHEN_RETRYABLE] === true && retryable === true) {
        throw new Error(`contract: ${label}: required header ${name} is missing (required when retryable)`);
      }
      continue;
    }
    if (header.schema !== undefined) {
      const validate = compileAt(`${responsePointer}/headers/${name}/schema`, header.schema);
      if (!validate(coerceHeader(value, header.schema))) {
        throw new Error(
          `contract: ${label}: header ${name}: ${JSON.stringify(value)}: ${formatErrors(validate.errors, name)}`,
        );
      }
    }
  }

  const content = isObject(response.content) ? response.content : undefined;
  if (!content || Object.keys(content).length === 0) {
    if (r.body !== '')
      throw new Error(`contract: ${label}: the documented response has no body, got ${r.body.length} bytes`);
    return;
  }
  const contentType = headerValue(r.headers, 'content-type');
  if (contentType === undefined) {
    throw new Error(
      `contract: ${label}: missing Content-Type (documented: ${Object.keys(content).join(', ')})`,
    );
  }
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  const documentedType =
    Object.keys(content).find((k) => k.toLowerCase() === mediaType) ??
    Object.keys(content).find((k) => mediaTypeMatches(k, mediaType));
  if (documentedType === undefined) {
    throw new Error(
      `contract: ${label}: Content-Type ${contentType} is not documented (documented: ${Object.keys(content).join(', ')})`,
    );
  }
  const media = deref(doc, content[documentedType], `${responsePointer}/content`);
  if (media.schema === undefined) return;
  let instance: unknown = r.body;
  if (isJsonMediaType(mediaType)) {
    try {
      instance = JSON.parse(r.body);
    } catch (e) {
      throw new Error(
        `contract: ${label}: body is not JSON (${(e as Error).message}): ${r.body.slice(0, 200)}`,
      );
    }
  }
  const schemaPointer = `${responsePointer}/content/${encodePointerToken(documentedType)}/schema`;
  const validate = compileAt(schemaPointer, media.schema);
  if (!validate(instance)) {
    const ref =
      isObject(media.schema) && typeof media.schema.$ref === 'string' ? media.schema.$ref : schemaPointer;
    throw new Error(`contract: ${label}: body does not match ${ref}: ${formatErrors(validate.errors)}`);
  }
}
