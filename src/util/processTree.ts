/**
 * POSIX shell commands that signal processes on a device together with all their
 * descendants. Descendants are found in /proc/<pid>/stat (the parent pid is the second
 * field after the command name in parentheses), not with `pkill -P` (BusyBox lacks it) or
 * process groups (a session's shell is not always a group leader: Dropbear leaves it in
 * its own group); the whole tree is listed before anything is signalled, as a dead
 * parent's children are re-parented out of reach.
 */

type Signal = 'INT' | 'TERM' | 'KILL';

/** Signals the processes `roots` (a shell expression printing pids) and their descendants. */
function signalTree(roots: string, signal: Signal): string {
  const tree =
    `cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$lw_roots" ` +
    `'{ i = index($0, ") "); split(substr($0, i + 2), f, " "); parent[$1] = f[2] } ` +
    `END { n = split(roots, q, " "); for (k = 1; k <= n; k++) { seen[q[k]] = 1; print q[k] } ` +
    `for (k = 1; k <= n; k++) for (p in parent) if (parent[p] == q[k] && !(p in seen)) { seen[p] = 1; q[++n] = p; print p } }'`;
  // Without /proc (or awk) the roots are still signalled.
  return `lw_roots=$(${roots}); [ -n "$lw_roots" ] && { lw_tree=$(${tree}); kill -s ${signal} \${lw_tree:-$lw_roots} 2>/dev/null; }; true`;
}

/** Signals processes by pid, with their descendants. */
export function signalProcessTree(pids: readonly (string | number)[], signal: Signal): string {
  const roots = pids.map(String).filter((pid) => /^\d+$/.test(pid));
  return roots.length === 0 ? 'true' : signalTree(`echo ${roots.join(' ')}`, signal);
}

/**
 * Signals, with their descendants, the processes whose command line contains `tag` (a
 * word a command carries, e.g. in a comment: the shell running it has it in its argv).
 * The search pattern is assembled at run time, so this command never finds itself.
 */
export function signalTaggedProcesses(tag: string, signal: Signal): string {
  if (!/^[A-Za-z0-9_]+$/.test(tag) || tag.length < 2) throw new Error(`signalTaggedProcesses: unusable tag ${JSON.stringify(tag)}`);
  const [head, tail] = [tag.slice(0, 1), tag.slice(1)];
  const roots = `for lw_d in /proc/[0-9]*; do grep -q "${head}\${lw_x}${tail}" "$lw_d/cmdline" 2>/dev/null && echo "\${lw_d#/proc/}"; done`;
  return `lw_x=; ${signalTree(roots, signal)}`;
}
