"""
How every script of this project fails. A mistake the user can fix (a bad setting, file or
dataset) is one line naming the problem and the fix, and exit code 1. Ctrl-C or SIGTERM is exit
code 130, quietly, even during the slow imports at start-up (a script calls quiet_interrupts()
before importing torch). Anything else is a bug and keeps its traceback.
"""
import os
import signal
import sys


class UserError(Exception):
    """A mistake the user can fix. The message names the problem and the fix, on one line."""


class ConfigError(UserError):
    """A bad setting: the message names it and what to use instead."""


class Interrupted(Exception):
    """Stopped by Ctrl-C or SIGTERM. The message says what was saved and how to go on."""


def a(word):
    """'a int' -> 'an int', 'a audio model' -> 'an audio model': the article a message puts before a word."""
    return ('an ' if str(word)[:1].lower() in 'aeiou' else 'a ') + str(word)


def reason(e, limit=100):
    """An exception in a few words for a one-line message: its type and the first line of its text."""
    text = (str(e).strip().splitlines() or [''])[0][:limit]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _exit_at_once(signum, frame):
    print(f"\ninterrupted ({signal.Signals(signum).name})", file=sys.stderr, flush=True)
    os._exit(130)  # during the imports: nothing written yet, and an exception raised inside a C
                   # extension's import would come out as an ImportError with a traceback


class SignalExit(SystemExit):
    """Ctrl-C or SIGTERM, as the exit it is (code 130): what catches a SystemExit of other code lets this one pass."""


def _exit_quietly(signum, frame):
    print(f"\ninterrupted ({signal.Signals(signum).name})", file=sys.stderr)
    raise SignalExit(130)  # finally blocks still run: temporary files are removed


def _install(handler):
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)


def quiet_interrupts():
    """From now on, until a script installs handlers of its own (train.py saves first), Ctrl-C or
    SIGTERM ends the process with exit code 130 and one line, not a traceback: at once during the
    imports, through SystemExit (so that clean-up runs) once main_guard has started."""
    _install(_exit_at_once)


def main_guard(main, *args):
    """Run a script's main(*args) with the error path above."""
    if signal.getsignal(signal.SIGINT) is _exit_at_once:
        _install(_exit_quietly)
    try:
        main(*args)
    except UserError as e:
        sys.exit(f"error: {e}")
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"\n{str(e) or 'interrupted'}", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader of stdout went away (--help | head): nothing is left to say to it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit fails no more
        sys.exit(1)
    finally:  # main is over: a signal during the interpreter's shutdown (joining threads) ends it at once, as 130,
        if signal.getsignal(signal.SIGINT) is _exit_quietly:  # not as an exception that shutdown can only print
            _install(_exit_at_once)
