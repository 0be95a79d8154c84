/**
 * One registry of fact kinds, approval states and the id rule (issue 19, deliverable 7): the
 * contract (`api/openapi.yaml`), the SDK's generated types and the server's rules all come from
 * `functions/shared/constants.ts` / `input-rules.ts`, so a new kind cannot reach one and not the
 * others. Plus the contract nits the issue found (JSON-RPC ids, `Accept` on `POST /mcp`).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { APPROVAL_FACT_KINDS, APPROVAL_STATES, FACT_KINDS } from '../../functions/shared/constants.js';
import { validationError } from '../../functions/shared/errors.js';
import { ID_PATTERN, rules } from '../../functions/shared/input-rules.js';
import { OPENAPI_PATH, assertMatchesContract, openApiDocument } from '../support/contract.js';

type Json = Record<string, any>;
const doc = openApiDocument() as Json;
const schemas = doc.components.schemas as Json;
const sdkTypes = readFileSync(join(dirname(dirname(OPENAPI_PATH)), 'sdk', 'src', 'openapi.ts'), 'utf8');

/** Every `enum` in the document, with where it is. */
function enums(v: unknown, at = '#', out: { at: string; values: unknown[] }[] = []) {
  if (Array.isArray(v)) v.forEach((child, i) => enums(child, `${at}/${i}`, out));
  else if (v && typeof v === 'object') {
    for (const [k, child] of Object.entries(v)) {
      if (k === 'enum' && Array.isArray(child)) out.push({ at, values: child });
      else enums(child, `${at}/${k}`, out);
    }
  }
  return out;
}

/** The string-literal union the SDK generated for `name` (`Name: "a" | "b";`), as a list. */
function sdkUnion(pattern: RegExp): string[] {
  const match = pattern.exec(sdkTypes);
  if (!match) throw new Error(`sdk/src/openapi.ts has no ${pattern}`);
  return [...match[1]!.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

describe('the registry of fact kinds and approval states', () => {
  it('is the contract’s FactKind, ApprovalFact.kind and ApprovalStatus enums', () => {
    expect(schemas.FactKind.enum).toEqual([...FACT_KINDS]);
    expect(schemas.ApprovalFact.properties.kind.enum).toEqual([...APPROVAL_FACT_KINDS]);
    expect(schemas.ApprovalStatus.enum).toEqual([...APPROVAL_STATES]);
    expect(doc.components.parameters.ApprovalStatusQuery.schema.enum).toEqual([...APPROVAL_STATES]);
  });

  it('leaves no other list of approval states or fact kinds in the contract', () => {
    const all = enums(doc);
    const states = all.filter((e) => e.values.includes('pending') && e.values.includes('approved'));
    const kinds = all.filter((e) => e.values.some((v) => FACT_KINDS.includes(v as never)));
    expect(states.map((e) => e.at)).toEqual([
      '#/components/parameters/ApprovalStatusQuery/schema',
      '#/components/schemas/ApprovalStatus',
    ]);
    expect(kinds.map((e) => e.at)).toEqual([
      '#/components/schemas/ApprovalFact/properties/kind',
      '#/components/schemas/FactKind',
    ]);
  });

  it('is the SDK’s generated types (run `npm run sdk:generate` after changing it)', () => {
    expect(sdkUnion(/^\s+FactKind: ([^;]+);/m)).toEqual([...FACT_KINDS]);
    expect(sdkUnion(/^\s+ApprovalStatus: ([^;]+);/m)).toEqual([...APPROVAL_STATES]);
    expect(sdkUnion(/ApprovalFact: \{\s+(?:\/\*\*[\s\S]*?\*\/\s+)*kind: ([^;]+);/)).toEqual([
      ...APPROVAL_FACT_KINDS,
    ]);
  });
});

describe('one id rule', () => {
  it('the contract’s path id patterns are the server’s ID_PATTERN', () => {
    for (const name of ['EventId', 'ApprovalId']) {
      expect(doc.components.parameters[name].schema.pattern).toBe(ID_PATTERN.source);
    }
  });

  it('the server accepts every id the contract’s pattern accepts, and refuses the others', () => {
    const contractPattern = new RegExp(doc.components.parameters.EventId.schema.pattern);
    const samples = [
      '00000000-0000-0000-0000-000000000000',
      'c232ab00-9414-11ec-b3c8-9f6bdeced846',
      '7c9e6679-7425-40de-944b-e07fc1f90ae7',
      '7C9E6679-7425-40DE-944B-E07FC1F90AE7',
      '{7c9e6679-7425-40de-944b-e07fc1f90ae7}',
      '7c9e667974254 0de944be07fc1f90ae7',
    ];
    for (const id of samples)
      expect([id, rules.uuid().safeParse(id).success]).toEqual([id, contractPattern.test(id)]);
  });
});

describe('contract nits', () => {
  it('JSON-RPC ids may be any number the server echoes (1.5)', () => {
    expect(() =>
      assertMatchesContract({
        method: 'POST',
        path: '/mcp',
        status: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1.5, result: { tools: [] } }),
      }),
    ).not.toThrow();
  });

  it('declares the Accept header POST /mcp requires', () => {
    const accept = (doc.paths['/mcp'].post.parameters as Json[]).find(
      (p) => p.in === 'header' && p.name === 'Accept',
    );
    expect(accept).toMatchObject({ required: true });
    expect(accept!.description).toMatch(/text\/event-stream/);
  });

  it('documents the local host’s 431 for oversized request headers', () => {
    expect(doc.info.description).toMatch(/431 `BAD_REQUEST`/);
  });

  it('names every validation detail by its JSON Pointer, as the Error schema says', () => {
    const error = validationError('invalid', [
      { path: 'params.issue', message: 'a connector’s dotted path' },
      { path: '/labels/a~1b', message: 'a pointer already' },
      { path: '', message: 'the whole body' },
    ]);
    expect(error.options.details!.map((d) => d.path)).toEqual(['/params/issue', '/labels/a~1b', '']);
    expect(schemas.Error.properties.details.items.properties.path.description).toMatch(/JSON Pointer/);
  });
});
