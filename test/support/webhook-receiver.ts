/**
 * A real webhook receiver on loopback for the notification tests: records every request (raw body
 * bytes, headers, arrival time) and answers as the test scripts it (a status, `Retry-After`, a
 * redirect, a stall). Its checks use the official verifiers: `standardwebhooks` `Webhook.verify`
 * and an HMAC-SHA256 of the raw body.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

export type Answer =
  | { status: number; headers?: Record<string, string> }
  /** Headers sent, then the body trickles a byte a second and never ends. */
  | { stall: true };

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Connections accepted (a refused or abandoned request may still have connected). */
  connections: number;
  /** What to answer to the n-th request (0-based); default 200. */
  answer: (n: number, request: Received) => Answer;
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** `port`: a fixed one (a fixture's recorded route names it); default a free one. */
export async function startReceiver(path = '/hooks', port = 0): Promise<Receiver> {
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    connections: 0,
    answer: () => ({ status: 200 }),
    async waitFor(count, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (receiver.received.length < count) {
        if (Date.now() > deadline)
          throw new Error(`receiver got ${receiver.received.length} of ${count} requests in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return receiver.received.slice(0, count);
    },
    close: () =>
      new Promise<void>((resolve) => {
        timers.forEach((t) => clearInterval(t));
        sockets.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const request: Received = { at: Date.now(), path: req.url ?? '', headers: req.headers, body, json };
      const n = receiver.received.length;
      receiver.received.push(request);
      const answer = receiver.answer(n, request);
      if ('stall' in answer) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '1000' });
        const timer = setInterval(() => res.write('.'), 1000);
        timers.add(timer);
        return;
      }
      res.writeHead(answer.status, answer.headers);
      res.end('ok');
    });
  });
  server.on('connection', (socket) => {
    receiver.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}${path}`;
  return receiver;
}

/** Both signatures of a request, checked with the official verifiers; throws naming the one that fails. */
export function verifySignatures(request: Received, secret: string): void {
  const headers = Object.fromEntries(
    Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
  );
  new Webhook(secret).verify(request.body, headers);
  const expected = `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(request.body, 'utf8').digest('hex')}`;
  const got = String(request.headers['x-oc-signature-256'] ?? '');
  if (got.length !== expected.length || !timingSafeEqual(Buffer.from(got), Buffer.from(expected)))
    throw new Error('X-OC-Signature-256 does not match the body');
}
