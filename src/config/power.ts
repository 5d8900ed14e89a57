/**
 * Validation of power controllers: the lab's `pdus` and each host's `power` (an outlet of a
 * named PDU, or a driver of the host's own). Secrets of the drivers are registered for
 * masking here, the moment the lab is defined.
 */
import { registerSecret } from '../util/secrets.js';
import { fieldsAt, formatIssues, suggest } from './problems.js';
import { type HttpPowerConfig, outletFieldSchema, type PduConfig, powerDriverSchemas, powerRefSchema } from './schema.js';

/** A host's power control after validation. */
export interface HostPowerConfig {
  /** Name of the lab PDU, or the host's own name when the driver is its own. */
  pdu: string;
  /** Whether the driver is the host's own rather than a PDU of the lab shared with other hosts. */
  own: boolean;
  /** The host's outlet (`{outlet}` in the driver's templates), if the driver has outlets. */
  outlet: string | undefined;
  /** The driver and its settings. */
  driver: PduConfig;
}

type Parsed<T> = T | { problems: string[] };

const DRIVERS = Object.keys(powerDriverSchemas) as Array<keyof typeof powerDriverSchemas>;

function isDriver(name: unknown): name is keyof typeof powerDriverSchemas {
  return typeof name === 'string' && (DRIVERS as string[]).includes(name);
}

/** Validates one power controller (a PDU of the lab, or a host's own driver without its `outlet`). */
export function parsePdu(raw: unknown, where: string): Parsed<{ pdu: PduConfig }> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { problems: [`${where}: expected an object with a "driver" (${DRIVERS.join(', ')})`] };
  }
  const driver = (raw as Record<string, unknown>).driver;
  if (!isDriver(driver)) {
    const hint = typeof driver === 'string' ? suggest(driver, DRIVERS) : undefined;
    return {
      problems: [
        `${where} → driver: ${driver === undefined ? 'missing' : `${JSON.stringify(driver)} is not a power driver`}; expected one of ${DRIVERS.map((d) => JSON.stringify(d)).join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}`,
      ],
    };
  }
  const schema = powerDriverSchemas[driver];
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) return { problems: formatIssues(where, parsed.error.issues, (path) => fieldsAt(schema, path)) };
  registerPowerSecrets(parsed.data, raw as Record<string, unknown>);
  return { pdu: parsed.data };
}

/**
 * Validates a host's `power`: `{ pdu, outlet }` naming one of `pdus`, or a driver of its own
 * (any driver's fields plus `outlet`).
 */
export function parseHostPower(
  raw: unknown,
  where: string,
  host: string,
  pdus: Readonly<Record<string, PduConfig>>,
  pduNames: readonly string[],
): Parsed<{ power: HostPowerConfig }> {
  if (typeof raw === 'object' && raw !== null && 'driver' in raw) {
    const { outlet, ...driverFields } = raw as Record<string, unknown>;
    const outletParsed = outletFieldSchema.safeParse({ outlet }, { reportInput: true });
    const driver = parsePdu(driverFields, where);
    const problems = [
      ...(outletParsed.success ? [] : formatIssues(where, outletParsed.error.issues, () => [])),
      ...('problems' in driver ? driver.problems : []),
    ];
    if (problems.length > 0 || 'problems' in driver || !outletParsed.success) return { problems };
    return { power: { pdu: host, own: true, outlet: outletParsed.data.outlet, driver: driver.pdu } };
  }
  if (typeof raw !== 'object' || raw === null || !('pdu' in raw)) {
    return {
      problems: [
        `${where}: expected { pdu, outlet } naming a PDU of the lab's pdus, or a driver of its own ({ driver: ${DRIVERS.map((d) => `"${d}"`).join(' | ')}, ... })`,
      ],
    };
  }
  const parsed = powerRefSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) return { problems: formatIssues(where, parsed.error.issues, (path) => fieldsAt(powerRefSchema, path)) };
  const pdu = pdus[parsed.data.pdu];
  if (!pdu) {
    // A PDU that exists but is itself invalid is reported once, as a PDU.
    if (pduNames.includes(parsed.data.pdu)) return { problems: [] };
    const hint = suggest(parsed.data.pdu, pduNames);
    return {
      problems: [
        `${where} → pdu: names "${parsed.data.pdu}", which is not a PDU of this lab${hint ? ` (did you mean "${hint}"?)` : ''}; known PDUs: ${pduNames.join(', ') || 'none (add them under "pdus")'}`,
      ],
    };
  }
  return { power: { pdu: parsed.data.pdu, own: false, outlet: parsed.data.outlet, driver: pdu } };
}

/** Names of environment or header entries whose literal values are credentials. */
const SECRET_NAME = /(pass|secret|token|auth|key|cookie|credential)/i;

/**
 * Registers a driver's secrets for masking: values read with `env()`, literal values of
 * secret-looking headers and variables, HTTP auth (and its encoded header), passwords in URLs.
 */
function registerPowerSecrets(pdu: PduConfig, raw: Record<string, unknown>): void {
  const fromEnv = (rawValues: unknown, values: Record<string, string>) => {
    for (const [name, value] of Object.entries(values)) {
      const given = (rawValues as Record<string, unknown> | undefined)?.[name];
      if (typeof given === 'object' || SECRET_NAME.test(name)) registerSecret(value);
    }
  };
  if (pdu.driver === 'command') fromEnv(raw.env, pdu.env);
  if (pdu.driver !== 'http') return;
  fromEnv(raw.headers, pdu.headers);
  for (const action of ['on', 'off', 'cycle', 'state'] as const) {
    const request = pdu[action];
    if (!request) continue;
    fromEnv((raw[action] as Record<string, unknown> | undefined)?.headers, request.headers);
    registerUrlPassword(request.url);
  }
  if (pdu.baseUrl) registerUrlPassword(pdu.baseUrl);
  registerAuth(pdu.auth);
}

function registerAuth(auth: HttpPowerConfig['auth']): void {
  if (!auth) return;
  registerSecret(auth.bearer);
  registerSecret(auth.password);
  // A server echoing the header back must not show the encoded credentials either.
  if (auth.user !== undefined && auth.password !== undefined) registerSecret(Buffer.from(`${auth.user}:${auth.password}`).toString('base64'));
}

function registerUrlPassword(url: string): void {
  const match = /^[a-z][a-z0-9+.-]*:\/\/([^/:@\s]*):([^@/\s]*)@/i.exec(url);
  if (!match?.[2]) return;
  const [, user = '', password] = match;
  registerSecret(password);
  try {
    const decoded = decodeURIComponent(password);
    registerSecret(decoded);
    // The driver sends it as basic auth: a server echoing that header must not show it either.
    registerSecret(Buffer.from(`${decodeURIComponent(user)}:${decoded}`).toString('base64'));
  } catch {}
}
