/**
 * Requests to a witness (C2SP tlog-witness), which is its own service beside the gateway: a text
 * protocol outside api/openapi.yaml, so it has its own small client here rather than the
 * gateway's contract-checking one (test/support/gateway-client.ts).
 */
export interface WitnessAnswer {
  status: number;
  text: string;
  type: string | null;
}

export async function witnessRequest(
  url: string,
  path: string,
  init: { method?: string; body?: string } = {},
): Promise<WitnessAnswer> {
  const res = await fetch(`${url}${path}`, { method: init.method ?? 'POST', body: init.body });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}
