/**
 * An open-loop load generator: requests start at a fixed arrival rate whatever the latency, as
 * independent clients would send them (a closed loop would slow down with the server and hide
 * queueing). In-flight requests are capped; an arrival that finds the cap full is counted as dropped.
 */
export interface LoadResult {
  rate: number;
  seconds: number;
  sent: number;
  dropped: number;
  statuses: Record<number, number>;
  latenciesMs: number[];
  accepted: Array<{ tenant: string; eventId: string }>;
  errors: number;
}

export interface LoadRequest {
  tenant: string;
  send: () => Promise<{ status: number; eventId?: string }>;
}

export async function openLoop(options: {
  rate: number;
  seconds: number;
  maxInFlight: number;
  next: (i: number) => LoadRequest;
}): Promise<LoadResult> {
  const result: LoadResult = {
    rate: options.rate,
    seconds: options.seconds,
    sent: 0,
    dropped: 0,
    statuses: {},
    latenciesMs: [],
    accepted: [],
    errors: 0,
  };
  const total = Math.round(options.rate * options.seconds);
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / options.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (inFlight.size >= options.maxInFlight) {
      result.dropped += 1;
      continue;
    }
    const request = options.next(i);
    const t = performance.now();
    result.sent += 1;
    const p = request
      .send()
      .then((r) => {
        result.latenciesMs.push(performance.now() - t);
        result.statuses[r.status] = (result.statuses[r.status] ?? 0) + 1;
        if (r.status === 200 && r.eventId)
          result.accepted.push({ tenant: request.tenant, eventId: r.eventId });
      })
      .catch(() => {
        result.errors += 1;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return result;
}
