/**
 * A small REST PDU for the HTTP power driver's tests: a user-defined protocol, as real
 * PDUs each have their own. Bearer token auth; POST /api/outlets/:id/on|off|cycle switches,
 * GET /api/outlets/:id answers {"outlet":id,"state":"on"|"off"}. It counts requests in
 * flight (a PDU that takes one control session at a time), echoes the Authorization header
 * in its error bodies (as careless servers do) so that masking can be checked, and can
 * act on real devices through `onSwitch` (a container restarted, say).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PduServer {
  /** Base URL, `http://127.0.0.1:<port>/api`. */
  readonly url: string;
  /** State of every outlet switched or declared. */
  readonly outlets: Map<string, 'on' | 'off'>;
  /** Every request: method, path and whether it was authorised. */
  readonly requests: Array<{ method: string; path: string; authorised: boolean }>;
  /** Most requests handled at the same time. */
  readonly maxInFlight: number;
  close(): Promise<void>;
}

export interface PduServerOptions {
  token: string;
  /** Outlets that exist, with their state. */
  outlets?: Record<string, 'on' | 'off'>;
  /** Time each switching request takes (ms). */
  delayMs?: number;
  /** Acts on the device behind the outlet; a throw answers 500. */
  onSwitch?: (outlet: string, action: 'on' | 'off' | 'cycle') => Promise<void>;
}

export async function startPduServer(options: PduServerOptions): Promise<PduServer> {
  const outlets = new Map(Object.entries(options.outlets ?? {}));
  const requests: PduServer['requests'] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const auth = req.headers.authorization ?? '';
    const authorised = auth === `Bearer ${options.token}`;
    requests.push({ method: req.method ?? '', path: req.url ?? '', authorised });
    const answer = (status: number, body: object) => {
      inFlight--;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    req.resume();
    req.on('end', () => {
      void (async () => {
        if (!authorised) return answer(401, { error: 'unauthorized', got: auth });
        const match = /^\/api\/outlets\/([^/]+)(?:\/(on|off|cycle))?$/.exec(req.url ?? '');
        const outlet = match ? decodeURIComponent(match[1]!) : undefined;
        if (!match || outlet === undefined || !outlets.has(outlet)) return answer(404, { error: `no outlet ${outlet ?? req.url}` });
        const action = match[2] as 'on' | 'off' | 'cycle' | undefined;
        if (!action) return answer(200, { outlet, state: outlets.get(outlet) });
        if (req.method !== 'POST') return answer(405, { error: 'POST to switch' });
        try {
          await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 0));
          await options.onSwitch?.(outlet, action);
          outlets.set(outlet, action === 'off' ? 'off' : 'on');
          answer(200, { outlet, state: outlets.get(outlet) });
        } catch (error) {
          answer(500, { error: `switching ${outlet} failed: ${(error as Error).message}`, request: { authorization: auth } });
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api`,
    outlets,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
