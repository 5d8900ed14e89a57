/**
 * SSH authentication: public keys (files, with passphrase), ssh-agent, keyboard-interactive
 * answered by rules (password, TOTP codes, fixed secrets) and passwords, in a configurable
 * order, skipping methods the server does not offer.
 */
import { readFile } from 'node:fs/promises';

import { Secret, TOTP } from 'otpauth';
import type { AuthenticationType, AuthHandlerMiddleware, NextAuthHandler } from 'ssh2';
import ssh2 from 'ssh2';

import type { AuthMethod, KeyboardInteractiveRule, UserCredentials } from '../config/schema.js';
import { ConnectionError } from '../util/errors.js';
import { expandHome } from '../util/paths.js';
import { quoteForMessage } from '../util/secrets.js';

/** Who logs in and how. */
export interface AuthPlan {
  host: string;
  username: string;
  credentials: UserCredentials;
  methods: readonly AuthMethod[];
  keyboardInteractive: readonly KeyboardInteractiveRule[] | undefined;
}

/** A TOTP code for a base32 seed (RFC 6238: SHA1, 6 digits, 30 s, as authenticator apps use). */
export function totpCode(secret: string, time = Date.now()): string {
  return new TOTP({ secret: Secret.fromBase32(secret.replace(/\s+/g, '').toUpperCase()), digits: 6, period: 30, algorithm: 'SHA1' }).generate({
    timestamp: time,
  });
}

/** Rules used when the config gives none: codes get a TOTP code, password prompts the password. */
export const DEFAULT_KBD_RULES: readonly KeyboardInteractiveRule[] = [
  { prompt: /(verification|one[- ]?time|otp|token|authenticator|\bcode\b)/i, answer: 'totp' },
  { prompt: /pass(word|phrase|code)?/i, answer: 'password' },
];

/** Reads and checks a private key file, so that a wrong passphrase is reported as such. */
export async function loadPrivateKey(host: string, username: string, file: string, passphrase: string | undefined): Promise<Buffer> {
  const where = `users.${username}.privateKey`;
  let data: Buffer;
  try {
    data = await readFile(expandHome(file));
  } catch (error) {
    throw new ConnectionError('auth', `cannot read the private key ${file} (${where}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`, {
      host,
      protocol: 'ssh',
      hint: 'Fix the path in the lab config.',
    });
  }
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    throw new ConnectionError(
      'auth',
      encrypted
        ? `the private key ${file} is encrypted and ${passphrase ? 'the passphrase does not open it' : 'no passphrase is configured'}.`
        : `the private key ${file} cannot be parsed: ${parsed.message}.`,
      { host, protocol: 'ssh', hint: encrypted ? `Set users.${username}.passphrase in the lab config.` : 'Use an OpenSSH or PEM private key.' },
    );
  }
  return data;
}

/** The outcome of an authentication attempt, for the error message when all fail. */
interface Attempt {
  method: AuthMethod;
  note: string;
}

/**
 * Builds ssh2's authHandler for a plan. `attempts` collects what was tried (never the
 * secrets) so that a refusal can say what to fix.
 */
export async function buildAuthHandler(
  plan: AuthPlan,
): Promise<{ handler: AuthHandlerMiddleware; attempts: Attempt[]; serverMethods: () => string[] | undefined }> {
  const { credentials, username, host } = plan;
  const key = credentials.privateKey ? await loadPrivateKey(host, username, credentials.privateKey, credentials.passphrase) : undefined;
  const agent = credentials.agent === true ? process.env.SSH_AUTH_SOCK : credentials.agent || undefined;
  const rules = plan.keyboardInteractive ?? DEFAULT_KBD_RULES;
  const canKbd = credentials.password !== undefined || credentials.totp !== undefined || (plan.keyboardInteractive?.length ?? 0) > 0;

  const attempts: Attempt[] = [];
  let serverMethods: string[] | undefined;
  const queue: AuthMethod[] = plan.methods.filter((method) => {
    if (method === 'publickey') return key !== undefined;
    if (method === 'agent') return agent !== undefined;
    if (method === 'password') return credentials.password !== undefined;
    return canKbd;
  });

  const answer = (prompt: string): string | undefined => {
    const rule = rules.find((candidate) => candidate.prompt.test(prompt));
    if (!rule) return undefined;
    if (rule.answer === 'password') return credentials.password;
    if (rule.answer === 'totp') return credentials.totp ? totpCode(credentials.totp) : undefined;
    return rule.answer.secret;
  };

  const handler: AuthHandlerMiddleware = (methodsLeft: AuthenticationType[] | null, _partial: boolean | null, next: NextAuthHandler) => {
    if (methodsLeft) serverMethods = methodsLeft;
    for (;;) {
      const method = queue.shift();
      if (!method) return next(false as unknown as AuthenticationType);
      const wire = method === 'agent' ? 'publickey' : method;
      if (methodsLeft && !methodsLeft.includes(wire as AuthenticationType)) {
        attempts.push({ method, note: 'not offered by the server' });
        continue;
      }
      switch (method) {
        case 'publickey':
          attempts.push({ method, note: `key ${credentials.privateKey}` });
          return next({ type: 'publickey', username, key: key!, passphrase: credentials.passphrase } as never);
        case 'agent':
          attempts.push({ method, note: `agent ${agent}` });
          return next({ type: 'agent', username, agent: agent! } as never);
        case 'password':
          attempts.push({ method, note: 'password' });
          return next({ type: 'password', username, password: credentials.password! } as never);
        case 'keyboard-interactive': {
          const attempt: Attempt = { method, note: 'prompts answered' };
          attempts.push(attempt);
          return next({
            type: 'keyboard-interactive',
            username,
            prompt: (_name: string, _instructions: string, _lang: string, prompts: { prompt: string }[], finish: (answers: string[]) => void) => {
              const unanswered = prompts.filter((p) => answer(p.prompt) === undefined).map((p) => quoteForMessage(p.prompt.trim(), 200, 'start'));
              if (unanswered.length > 0) attempt.note = `no rule or credential answers ${unanswered.join(', ')}`;
              finish(prompts.map((p) => answer(p.prompt) ?? ''));
            },
          } as never);
        }
      }
    }
  };
  return { handler, attempts, serverMethods: () => serverMethods };
}

/** The error for a refused login, naming what was tried. */
export function authFailure(
  host: string,
  username: string,
  endpoint: string,
  attempts: readonly Attempt[],
  serverMethods: string[] | undefined,
): ConnectionError {
  const tried =
    attempts.length > 0 ? attempts.map((a) => `${a.method} (${a.note})`).join(', ') : 'nothing: no credential of this user fits the allowed methods';
  return new ConnectionError(
    'auth',
    `authentication refused for user "${username}" at ${endpoint}; tried ${tried}${serverMethods ? `; the server accepts ${serverMethods.join(', ')}` : ''}.`,
    {
      host,
      protocol: 'ssh',
      hint: `Check users.${username} (password, privateKey, passphrase, totp) and ssh.authMethods in the lab config; labwright does not retry refused credentials.`,
    },
  );
}
