/**
 * A loopback stand-in for SSM Parameter Store's JSON protocol (awsJson1_1): GetParameter and
 * PutParameter on one store in memory. It refuses a call whose SigV4 shape is not this service's
 * (scope `us-east-1/ssm`, host and target signed, session token `tok`): the credentials a test
 * gives are `AKIDEXAMPLE` / `test` / `tok`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Parameter {
  value: string;
  type: string;
}

/** SSM's awsJson1_1 protocol for GetParameter and PutParameter, one parameter store in memory. */
export function fakeSsm() {
  const parameters = new Map<string, Parameter>();
  const calls: string[] = [];
  /** Each call's action and input, in order. */
  const requests: Array<{ action: string; input: Record<string, unknown> }> = [];
  let failNext = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const action = String(req.headers['x-amz-target']).replace('AmazonSSM.', '');
      calls.push(action);
      // What SSM reads of a signed call: the SigV4 scope of this service and the session token.
      const auth = String(req.headers.authorization);
      if (
        !/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/ssm\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*x-amz-target[a-z0-9;-]*, Signature=[0-9a-f]{64}$/.test(
          auth,
        ) ||
        req.headers['x-amz-security-token'] !== 'tok' ||
        req.headers['content-type'] !== 'application/x-amz-json-1.1'
      ) {
        res.writeHead(403, { 'Content-Type': 'application/x-amz-json-1.1' });
        return res.end(JSON.stringify({ __type: 'InvalidSignatureException', message: auth }));
      }
      const input = JSON.parse(body) as { Name: string; Value?: string; Type?: string; Overwrite?: boolean };
      requests.push({ action, input });
      const answer = (status: number, json: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(json));
      };
      if (failNext > 0) {
        failNext--;
        return answer(400, { __type: 'AccessDeniedException', message: 'denied' });
      }
      if (action === 'GetParameter') {
        const p = parameters.get(input.Name);
        if (!p) return answer(400, { __type: 'ParameterNotFound', message: 'not found' });
        return answer(200, { Parameter: { Name: input.Name, Type: p.type, Value: p.value, Version: 1 } });
      }
      if (action === 'PutParameter') {
        if (parameters.has(input.Name) && !input.Overwrite)
          return answer(400, { __type: 'ParameterAlreadyExists', message: 'exists' });
        parameters.set(input.Name, { value: input.Value!, type: input.Type! });
        return answer(200, { Version: 1, Tier: 'Standard' });
      }
      return answer(400, { __type: 'InvalidAction' });
    });
  });
  return {
    parameters,
    calls,
    requests,
    failOnce: () => (failNext = 1),
    start: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () =>
          resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
        ),
      ),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
