#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Run a command on a terminal of its own (a pty), for the PIN prompt tests.

usage: ptyrun.py --log LOG [--prompt TEXT] [--answer FILE] [--interrupt]
                 [--type-ahead FILE] -- COMMAND...

The command gets the pty as its controlling terminal (/dev/tty) and as its
standard input; its standard output and error go to LOG.out and LOG.err,
what it writes on the terminal to LOG.  --type-ahead types the file's
content and a newline before the command starts (without echo, as a user
typing ahead of a prompt).  Once TEXT shows on the terminal, --answer types
the file's content and a newline, --interrupt types ^C.  Waits (for the
prompt, for the end) are bounded by 120 s: a command that hangs is killed
and reported.  Prints key=value lines:

  prompt=1|0            TEXT was shown
  echo_at_prompt=1|0    the terminal echoed while TEXT was shown
  echo_after=1|0        the terminal echoes after the command ended
  exit=N | signal=NAME  how it ended (timeout=1 when it had to be killed)
"""
import argparse
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time

LIMIT_S = 120


def echo_on(fd):
    return 1 if termios.tcgetattr(fd)[3] & termios.ECHO else 0


def set_echo(fd, on):
    attrs = termios.tcgetattr(fd)
    if on:
        attrs[3] |= termios.ECHO
    else:
        attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--prompt")
    ap.add_argument("--answer")
    ap.add_argument("--interrupt", action="store_true")
    ap.add_argument("--type-ahead")
    ap.add_argument("command", nargs="+")
    a = ap.parse_args()

    master, slave = os.openpty()
    if a.type_ahead:
        with open(a.type_ahead, "rb") as f:
            typed = f.read().rstrip(b"\r\n") + b"\n"
        set_echo(slave, False)
        os.write(master, typed)
        set_echo(slave, True)

    def child_setup():
        # A session of its own with the pty as controlling terminal, and
        # the signals of a terminal as a user's shell leaves them.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
            signal.signal(sig, signal.SIG_DFL)

    with open(a.log + ".out", "wb") as out, open(a.log + ".err", "wb") as err:
        proc = subprocess.Popen(a.command, stdin=slave, stdout=out, stderr=err,
                                start_new_session=True,
                                preexec_fn=child_setup)
    seen = b""
    shown = 0
    echo_at_prompt = -1
    deadline = time.monotonic() + LIMIT_S
    timeout = 0
    with open(a.log, "wb") as log:
        while True:
            if proc.poll() is not None:
                r, _, _ = select.select([master], [], [], 0)
                if not r:
                    break
            elif time.monotonic() > deadline:
                proc.kill()
                timeout = 1
                proc.wait()
                break
            r, _, _ = select.select([master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if not data:
                if proc.poll() is not None:
                    break
                continue
            log.write(data)
            log.flush()
            seen += data
            if a.prompt and not shown and a.prompt.encode() in seen:
                shown = 1
                echo_at_prompt = echo_on(slave)
                if a.answer:
                    with open(a.answer, "rb") as f:
                        os.write(master, f.read().rstrip(b"\r\n") + b"\n")
                elif a.interrupt:
                    os.write(master, b"\x03")
    status = proc.wait()
    print("prompt=%d" % shown)
    print("echo_at_prompt=%d" % echo_at_prompt)
    print("echo_after=%d" % echo_on(slave))
    if timeout:
        print("timeout=1")
    if status < 0:
        print("signal=%s" % signal.Signals(-status).name)
    else:
        print("exit=%d" % status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
