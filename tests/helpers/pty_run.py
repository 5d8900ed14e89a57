#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and drives it from a script, for CLI tests.

Usage: pty_run.py SCRIPT_JSON -- COMMAND [ARGS...]

The script is a JSON list of steps:
  {"size": [cols, rows]}   set the terminal size (before the first step: at start)
  {"expect": "regex"}      wait until the output so far (since the last expect) matches
  {"send": "text"}         type text
  {"sleep": seconds}       wait (only to let a program react to a resize)
Every wait is bounded by the script's own deadline (30 s). Prints everything the
program wrote as JSON {"output": ..., "exit": code, "error": ...} on stdout.
"""
import fcntl, json, os, pty, re, select, signal, struct, sys, termios, time

def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

def main():
    steps = json.loads(sys.argv[1])
    command = sys.argv[sys.argv.index('--') + 1:]
    size = next((s['size'] for s in steps if 'size' in s), [80, 24])
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    set_size(fd, *size)
    output = b''
    seen = 0
    deadline = time.time() + 60
    error = None

    def pump(timeout):
        nonlocal output
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        output += data
        return True

    alive = True
    for index, step in enumerate(steps):
        if 'size' in step and index > 0:
            set_size(fd, *step['size'])  # the kernel sends SIGWINCH to the foreground group
        elif 'send' in step:
            os.write(fd, step['send'].encode())
        elif 'sleep' in step:
            end = time.time() + step['sleep']
            while alive and time.time() < end:
                alive = pump(end - time.time())
        elif 'expect' in step:
            pattern = re.compile(step['expect'].encode())
            while True:
                match = pattern.search(output, seen)
                if match:
                    seen = match.end()
                    break
                if not alive or time.time() > deadline:
                    error = 'expect %r not seen' % step['expect']
                    break
                alive = pump(min(0.5, deadline - time.time()))
            if error:
                break
    while alive and time.time() < deadline:
        alive = pump(0.5)
    code = None
    if alive:
        os.kill(pid, signal.SIGKILL)
        error = error or 'the program did not end'
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({'output': output.decode('utf-8', 'replace'), 'exit': code, 'error': error}))

main()
