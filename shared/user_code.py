"""Whether an exception that came out of a pipeline's own code is that pipeline's to
answer for, or must go on up.

Any `Exception` is the code's. So are `SystemExit` (a mapper that calls `sys.exit`) and a
`KeyboardInterrupt` the code raised itself: caught only as `Exception`, they escaped every
guard and took the worker down with them, and every pipeline it served. A
`KeyboardInterrupt` is Ctrl-C only where SIGINT still has Python's default handler (a
terminal, the inline runner); workers install their own (services/runtime/process.py), so
there it can only be the code's. `GeneratorExit` and the like stay the interpreter's."""

from __future__ import annotations

import signal


def raised_by_user(exc: BaseException) -> bool:
    if isinstance(exc, Exception | SystemExit):
        return True
    if isinstance(exc, KeyboardInterrupt):
        return signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    return False


def reraise_unless_users(exc: BaseException) -> None:
    """For `except BaseException` around user code: let what is not the code's go on."""
    if not raised_by_user(exc):
        raise exc
