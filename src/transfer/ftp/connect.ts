/**
 * Opens one logged-in basic-ftp client through a {@link NetworkPath}: the control
 * connection goes to `path.endpoint(address, port)`, data connections through
 * {@link PassiveDataConnector}. Every failure becomes a {@link ConnectionError} naming the
 * host, the step that failed and, for refusals, the server's reply.
 */
import net from 'node:net';
import tls from 'node:tls';

import { Client, FTPError } from 'basic-ftp';

import type { ConnectContext, LocalEndpoint, NetworkPath } from '../../transport/network.js';
import { adviceFor, classifySocketError } from '../../transport/network.js';
import { type ConnectFailure, ConnectionError, messageOf } from '../../util/errors.js';
import { formatDuration, withTimeout } from '../../util/time.js';
import { type PassiveCommand, PassiveDataConnector } from './passive.js';

/** Everything needed to log in to one FTP server. */
export interface FtpLogin {
  /** Lab host name, for messages. */
  host: string;
  /** Address as configured; endpoints are asked for it. */
  address: string;
  port: number;
  secure: false | 'explicit' | 'implicit';
  allowUnauthorizedTls: boolean;
  user: string;
  password: string | undefined;
  /** Bound on connecting, TLS and login together. */
  connectTimeout: number;
  /** basic-ftp's timeout: a control reply or a stalled data transfer waits at most this long. */
  idleTimeout: number;
  path: NetworkPath;
  /** Passive commands to try (default EPSV, then PASV). */
  passiveCommands?: readonly PassiveCommand[];
}

/** A logged-in client and what it holds. */
export interface FtpConnection {
  readonly client: Client;
  readonly connector: PassiveDataConnector;
  /** Absolute directory after login; relative remote paths start here. */
  readonly home: string;
  /** Whether the control connection is closed (server quit, error, timeout). */
  readonly closed: boolean;
  /** Calls `listener` once the control connection closes (at once if it is closed); returns the unsubscribe function. */
  onLost(listener: (error: Error) => void): () => void;
  /** Sends NOOP with a short bound; `false` (and closes) when the server does not answer. */
  probe(timeoutMs: number): Promise<boolean>;
  /** Closes the client and releases its endpoints. Idempotent. */
  close(): Promise<void>;
}

type Step = 'greeting' | 'tls' | 'login' | 'settings';

const STEP_TEXT: Record<Step, string> = {
  greeting: "waiting for the server's greeting",
  tls: 'negotiating TLS (AUTH TLS)',
  login: 'logging in',
  settings: 'setting binary mode',
};

/** TLS options for control and data connections: identity checked against the configured address. */
export function tlsOptionsFor(address: string, allowUnauthorizedTls: boolean): tls.ConnectionOptions {
  return {
    rejectUnauthorized: !allowUnauthorizedTls,
    // SNI must be a DNS name (RFC 6066); an IP address is checked against the certificate only.
    ...(net.isIP(address) === 0 ? { servername: address } : {}),
    // Through a hop the socket goes to 127.0.0.1, but the certificate names the device.
    checkServerIdentity: (_name, cert) => tls.checkServerIdentity(address, cert),
    // TLS 1.3 uploads to vsftpd fail now and then with "426 Failure reading network
    // stream": its data connection shutdown races the client's close (vsftpd issue #7 of
    // InfrastructureServices/vsftpd, FluentFTP #1789; basic-ftp closes on 'finish'). With
    // TLS 1.2 the shutdown is ordered; 1.2 with the ciphers Node offers is still sound.
    maxVersion: 'TLSv1.2',
  };
}

/** Opens and logs in one client; bounded by `connectTimeout`. */
export async function openFtpConnection(login: FtpLogin): Promise<FtpConnection> {
  const context: ConnectContext = { host: login.host, protocol: 'ftp' };
  const where = `${login.address}:${login.port}${login.path.description === 'direct' ? '' : ` ${login.path.description}`}`;
  let step: Step | 'endpoint' = 'endpoint';
  let endpoint: LocalEndpoint | undefined;
  const connector = new PassiveDataConnector({
    address: login.address,
    path: login.path,
    context,
    connectTimeout: login.connectTimeout,
    ...(login.passiveCommands ? { commands: login.passiveCommands } : {}),
  });
  const client = new Client(login.idleTimeout);
  connector.install(client);
  let endpointReleased = false;
  const releaseEndpoint = async () => {
    if (!endpoint || endpointReleased) return;
    endpointReleased = true;
    await withTimeout(endpoint.release(), 5_000, () => new Error('endpoint release timed out')).catch(() => {});
  };
  const cleanup = async () => {
    client.close();
    await connector.release();
    await releaseEndpoint();
  };

  const sequence = async (): Promise<string> => {
    endpoint = await login.path.endpoint(login.address, login.port, context);
    const tlsOptions = tlsOptionsFor(login.address, login.allowUnauthorizedTls);
    step = 'greeting';
    if (login.secure === 'implicit') await client.connectImplicitTLS(endpoint.host, endpoint.port, tlsOptions);
    else await client.connect(endpoint.host, endpoint.port);
    if (login.secure === 'explicit') {
      step = 'tls';
      // `host` is the TLS session's identity: data connections resume under the same one.
      await client.useTLS({ ...tlsOptions, host: endpoint.host });
    }
    step = 'login';
    await client.sendIgnoringError('OPTS UTF8 ON');
    await client.login(login.user, login.password ?? '');
    step = 'settings';
    await client.useDefaultSettings();
    return client.pwd();
  };

  let home: string;
  const running = sequence();
  try {
    home = await withTimeout(
      running,
      login.connectTimeout,
      () =>
        new ConnectionError('timeout', `no FTP login at ${where} within ${formatDuration(login.connectTimeout)} (stuck ${stepText(step)}).`, {
          ...context,
          hint: adviceFor('timeout'),
        }),
    );
  } catch (error) {
    await cleanup();
    // On a timeout the sequence may still be waiting for its endpoint: release it when it comes.
    void running.then(undefined, () => undefined).then(releaseEndpoint);
    throw loginError(error, step, login, where, context);
  }

  let closing: Promise<void> | undefined;
  // The control socket is final after login (TLS included): its close ends the session.
  const control = client.ftp.socket;
  return {
    client,
    connector,
    home,
    get closed() {
      return client.closed;
    },
    onLost(listener) {
      const lost = () => listener(new Error(`the FTP control connection to ${where} closed`));
      if (client.closed || control.destroyed) {
        lost();
        return () => {};
      }
      control.once('close', lost);
      return () => control.off('close', lost);
    },
    async probe(timeoutMs) {
      if (client.closed) return false;
      try {
        await withTimeout(client.send('NOOP'), timeoutMs, () => new Error('NOOP unanswered'));
        return true;
      } catch {
        client.close();
        return false;
      }
    },
    close: () => (closing ??= cleanup()),
  };
}

function stepText(step: Step | 'endpoint'): string {
  return step === 'endpoint' ? 'opening the connection' : STEP_TEXT[step];
}

const TLS_IDENTITY_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/;

/** Translates a failure while logging in into a ConnectionError with advice. */
function loginError(error: unknown, step: Step | 'endpoint', login: FtpLogin, where: string, context: ConnectContext): ConnectionError {
  if (error instanceof ConnectionError) return error;
  const fail = (kind: ConnectFailure, detail: string, hint = adviceFor(kind)) => new ConnectionError(kind, detail, { ...context, hint, cause: error });
  const tlsMode = login.secure === 'implicit' ? 'implicit FTPS' : 'explicit FTPS (AUTH TLS)';

  if (error instanceof FTPError) {
    const reply = error.message.trim();
    if (error.code === 421) return fail('reset', `the FTP server at ${where} turned the connection away ${stepText(step)}: "${reply}".`);
    if (step === 'login') {
      return fail(
        'auth',
        `login as "${login.user}" at ${where} refused: "${reply}".`,
        `Check the password of user "${login.user}" for host "${login.host}" in the lab config (FTP logs in as ftp.user, else the host's user), and that the account may use FTP.`,
      );
    }
    if (step === 'tls') {
      return fail(
        'protocol',
        `the FTP server at ${where} refused ${tlsMode}: "${reply}".`,
        "Set ftp.secure to match the server: false (plain FTP), 'explicit' or 'implicit'.",
      );
    }
    return fail('protocol', `the FTP server at ${where} answered "${reply}" while ${stepText(step)}.`);
  }

  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = messageOf(error);
  if (code && TLS_IDENTITY_CODES.test(code)) {
    return fail(
      'host-key',
      `the TLS certificate of the FTP server at ${where} was rejected (${code}: ${message}).`,
      'Install the CA that signed it on the runner (NODE_EXTRA_CA_CERTS), or set ftp.allowUnauthorizedTls: true for a self-signed lab certificate.',
    );
  }
  if ((code && /^ERR_SSL_|^EPROTO$/.test(code)) || /SSL routines|wrong version number|packet length too long/i.test(message)) {
    return fail(
      'protocol',
      `TLS failed with the FTP server at ${where} while ${stepText(step)} (${message}).`,
      `The server does not speak ${tlsMode} on this port: set ftp.secure to match it (false, 'explicit' or 'implicit') and check ftp.port.`,
    );
  }
  if (/^Timeout \(control socket\)/.test(message)) {
    return fail('timeout', `the FTP server at ${where} did not answer within ${formatDuration(login.idleTimeout)} while ${stepText(step)}.`);
  }
  if (/Server sent FIN|closed connection unexpectedly/i.test(message)) {
    return fail(
      'closed',
      `the FTP server at ${where} closed the connection while ${stepText(step)}.`,
      step === 'tls' || login.secure === 'implicit'
        ? `It may not support ${tlsMode}: set ftp.secure to match the server.`
        : 'Check that an FTP server (not another service) listens on ftp.port and accepts more connections.',
    );
  }
  if (code) {
    const kind = classifySocketError(code);
    const detail = kind === 'refused' ? 'connection refused' : kind === 'dns' ? `the name ${login.address} does not resolve (${code})` : code;
    return fail(kind, `cannot connect to the FTP server at ${where}: ${detail}.`);
  }
  return fail('protocol', `FTP login at ${where} failed while ${stepText(step)}: ${message}.`);
}
