/** Turns zod issues into one-line problems naming the host, the field, what was given and what is expected. */
import type { z } from 'zod';

/** Fields whose values are credentials, and subtrees where any value may be one. */
const SECRET_FIELD = /(password|passphrase|totp|secret|token|answer|bearer|authorization|api-?key|cookie)/i;
const CREDENTIAL_SUBTREE = /^users$/;

/** Field path as written in the config: `ssh.port`, `users.root.password`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((part) => (typeof part === 'number' ? `[${part}]` : String(part)))
    .join('.')
    .replace(/\.\[/g, '[');
}

/** Whether a value at `path` may be a credential: under `users`, a secret-looking field, an MFA answer. */
export function isCredentialPath(path: readonly PropertyKey[]): boolean {
  return path.some((part) => SECRET_FIELD.test(String(part)) || CREDENTIAL_SUBTREE.test(String(part)));
}

/** A URL's password, masked (`postgres://user:***@db`). */
function maskUrlPassword(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)[^@\s]*@/gi, '$1***@');
}

/**
 * Short preview of a given value. Values that may be credentials are never shown, and
 * objects and arrays show only their shape: a value in them may be a misplaced password.
 */
function preview(value: unknown, path: readonly PropertyKey[]): string {
  if (isCredentialPath(path)) return 'a value (hidden: it may be a credential)';
  if (value instanceof RegExp) return String(value);
  if (typeof value === 'string') return JSON.stringify(maskUrlPassword(value.length > 60 ? `${value.slice(0, 57)}...` : value));
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length} item(s)`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length === 0 ? 'an empty object' : `an object with ${keys.length > 6 ? `${keys.slice(0, 6).join(', ')}, ...` : keys.join(', ')}`;
  }
  return String(value);
}

/** Levenshtein distance, for "did you mean" suggestions on misspelt field names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The closest known name to `name`, if it is close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? `a ${issue.expected} is required` : `expected ${issue.expected}`;
    case 'too_small':
      return `expected ${issue.origin === 'string' ? 'a non-empty string' : issue.origin === 'array' || issue.origin === 'set' ? `at least ${String(issue.minimum)} item(s)` : `a value >= ${String(issue.minimum)}`}`;
    case 'too_big':
      return `expected ${issue.origin === 'array' ? `at most ${String(issue.maximum)} item(s)` : `a value <= ${String(issue.maximum)}`}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      return 'expected ' + describeUnion(issue);
    default:
      return issue.message;
  }
}

function describeUnion(issue: z.core.$ZodIssueInvalidUnion): string {
  const alternatives = new Set<string>();
  for (const branch of issue.errors) {
    const first = branch[0];
    if (!first) continue;
    if (first.code === 'invalid_type' && first.path.length === 0) alternatives.add(first.expected);
    else if (first.code === 'invalid_value' && first.path.length === 0) first.values.forEach((v) => alternatives.add(JSON.stringify(v)));
    else alternatives.add(first.message);
  }
  return alternatives.size > 0 ? [...alternatives].join(' or ') : 'a different value';
}

/**
 * Formats zod issues for the object at `where` (e.g. `host "dut1"`), adding the valid
 * field names to unknown-field problems.
 */
export function formatIssues(where: string, issues: readonly z.core.$ZodIssue[], knownFields: (path: readonly PropertyKey[]) => string[]): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownFields(issue.path);
      for (const key of issue.keys) {
        const field = fieldPath([...issue.path, key]);
        const hint = suggest(key, known);
        problems.push(`${where} → ${field}: unknown field${hint ? ` (did you mean "${hint}"?)` : ''}; known fields here: ${known.join(', ')}`);
      }
      continue;
    }
    const field = issue.path.length > 0 ? fieldPath(issue.path) : '(top level)';
    if (issue.code === 'custom') {
      problems.push(`${where} → ${field}: ${issue.message}`);
      continue;
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      problems.push(`${where} → ${field}: missing, ${expectation(issue)}`);
      continue;
    }
    problems.push(`${where} → ${field}: ${expectation(issue)}, got ${preview(issue.input, issue.path)}`);
  }
  return problems;
}

/** Field names of the object schema found at `path` inside `schema`, for unknown-field hints. */
export function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType | undefined = schema;
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    let inner = s;
    for (;;) {
      const def = inner._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType; type: string };
      if (def.innerType) inner = def.innerType;
      else if (def.type === 'pipe' && def.in) inner = def.in;
      else return inner;
    }
  };
  for (const part of path) {
    if (!current) return [];
    current = unwrap(current);
    const def = current._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; valueType?: z.core.$ZodType };
    if (def.type === 'object' && def.shape) current = def.shape[String(part)];
    else if (def.type === 'record') current = def.valueType;
    else return [];
  }
  if (!current) return [];
  const def = unwrap(current)._zod.def as { type: string; shape?: Record<string, unknown> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}
