/**
 * The HTTP power driver, for REST PDUs: one request per action, built from the method, URL,
 * body and header templates of the lab config (`{outlet}` and `{host}` filled in, URL-encoded
 * in URLs), with basic or bearer auth. A 2xx answer is success; the state request's body is
 * matched against the `stateOn`/`stateOff` patterns. Secrets are registered when the lab is
 * defined, so every message built here is masked.
 */
import type { HttpPowerConfig, HttpRequestConfig } from '../config/schema.js';
import { LabwrightError, messageOf } from '../util/errors.js';
import { quoteForMessage } from '../util/secrets.js';
import { abortReason } from '../util/time.js';
import { templateDriver } from './templateDriver.js';
import { fillTemplate } from './templates.js';
import type { OutletRef, PowerDriver } from './types.js';

/** A request ready to send: the URL without credentials (they move to the Authorization header). */
interface PreparedRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
}

/** The HTTP driver of a PDU config. */
export function httpDriver(config: HttpPowerConfig): PowerDriver {
  return templateDriver('http', config, (template, ref, signal) => send(config, template, ref, signal));
}

/** Sends one request and returns the body of its 2xx answer; anything else is an error naming the request. */
async function send(config: HttpPowerConfig, template: HttpRequestConfig, ref: OutletRef, signal: AbortSignal): Promise<string> {
  const request = prepare(config, template, ref);
  const what = `${request.method} ${request.url.href}`;
  let response: Response;
  let body: string;
  try {
    response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal, redirect: 'follow' });
    body = await response.text();
  } catch (error) {
    if (signal.aborted)
      throw new LabwrightError(`${what} was abandoned (${abortReason(signal)}).`, { hint: "Check that the PDU answers, or raise the driver's timeout." });
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new LabwrightError(`${what} failed: ${cause?.code ?? cause?.message ?? messageOf(error)}.`, {
      hint: "Check the PDU's address in the lab config and that it answers from the runner.",
      cause: error,
    });
  }
  if (!response.ok) {
    const said = body.trim() ? `: ${quoteForMessage(body.trim(), 300)}` : '';
    const hint =
      response.status === 401 || response.status === 403
        ? 'Check the credentials of the PDU (auth, headers) in the lab config.'
        : "Check the request templates against the PDU's API.";
    throw new LabwrightError(`${what} answered HTTP ${response.status} ${response.statusText}${said}.`, { hint });
  }
  return body;
}

function prepare(config: HttpPowerConfig, template: HttpRequestConfig, ref: OutletRef): PreparedRequest {
  const filled = fillTemplate(template.url, ref, encodeURIComponent);
  const absolute = /^[a-z][a-z0-9+.-]*:\/\//i.test(filled);
  if (!absolute && !config.baseUrl)
    throw new LabwrightError(`the URL ${JSON.stringify(filled)} is relative and the driver has no baseUrl.`, { hint: 'Give an absolute URL or set baseUrl.' });
  let url: URL;
  try {
    url = new URL(absolute ? filled : `${config.baseUrl!.replace(/\/+$/, '')}/${filled.replace(/^\/+/, '')}`);
  } catch (error) {
    throw new LabwrightError(`the URL ${JSON.stringify(filled)} is not valid (${messageOf(error)}).`, {
      hint: 'Fix the URL template of the PDU in the lab config.',
    });
  }
  const headers: Record<string, string> = { ...config.headers, ...template.headers };
  // fetch refuses URLs with credentials: they become basic auth.
  if (url.username || url.password) {
    headers.Authorization = basic(decodeURIComponent(url.username), decodeURIComponent(url.password));
    url.username = '';
    url.password = '';
  }
  const { auth } = config;
  if (auth?.bearer !== undefined) headers.Authorization = `Bearer ${auth.bearer}`;
  else if (auth?.user !== undefined && auth.password !== undefined) headers.Authorization = basic(auth.user, auth.password);
  return { method: template.method.toUpperCase(), url, headers, body: template.body === undefined ? undefined : fillTemplate(template.body, ref) };
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
