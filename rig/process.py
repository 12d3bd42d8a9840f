"""A `rig` process's start and end: fewer garbage collections while it imports, an end without
the interpreter's teardown, and its child processes (children()).

Start-up: a command imports pytest, numpy, matplotlib and the rig (about 0.7 s); at CPython's
default threshold (a young collection every 700 allocations, with older ones every tenth) about a
tenth of that went into collections that find nothing to free (module objects live as long as the
process). collect_less_often() gives the whole process (the command, and each `rig run -n N`
worker) the threshold plan runs already use (rig.runner._fewer_collections): 0.68 -> 0.62 s for
the imports of a plan run.

End: a `rig run` process ends holding matplotlib, numpy, the EXI grammars and its last plan's data.
The interpreter's own teardown (a last garbage collection, then every module's objects freed one
by one) took 0.44 s of a serial `rig run` over the default plans after the last exit handler had
run, and about 0.3 s in each `rig run -n N` worker, which the controller waits for before it
writes the merged report. Nothing is left to do by then: the runner, the trace, the captures and
the report close every file they open (a run under `python -X dev` reports no unclosed file), so
the process runs its exit handlers as usual (logging's shutdown, temporary folders, anything a
library registered), flushes its standard streams and leaves with os._exit.

Where a thread other than the main one is still running (not a daemon), the normal exit is kept:
the interpreter would wait for it, and so does the rig.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
from typing import NoReturn

#: Allocations between two young-generation collections (CPython's default: 700); as during a run.
YOUNG_THRESHOLD = 50_000


def collect_less_often() -> None:
    """The process collects its young generation every YOUNG_THRESHOLD allocations."""
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _other_threads_running() -> bool:
    main = threading.main_thread()
    return any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate())


def _flush_standard_streams(code: int) -> int:
    """Flush stdout and stderr; the exit code, 120 where stdout could not take what was written
    to it (a full disk) and nothing else had failed, as the interpreter's own exit gives."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # the reader went away (`rig run | head`): nothing more to say, nothing lost for it
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError, ValueError):
            print(f"rig: standard output lost: {exc}", file=sys.stderr)
        code = code or 120
    except AttributeError:
        pass  # no stdout at all
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    return code


def leave(code: int) -> NoReturn:
    """End the process with `code` once the exit handlers have run, skipping the teardown."""
    if _other_threads_running():
        raise SystemExit(code)
    atexit._run_exitfuncs()
    os._exit(_flush_standard_streams(code))


def leave_after_exit_handlers(code: int = 0) -> None:
    """Make the interpreter's exit skip its teardown, from inside a process whose main flow
    is not the rig's (an xdist worker, run by execnet).

    Registered last, the handler runs first at exit: it runs every other handler (last
    registered first, as the interpreter would, each once: the nested run clears them), then
    ends the process. A handler registered after it has already run when it is reached, and a
    nested run would run that one twice: then it does nothing and the exit takes its normal
    way. Call it when the process has nothing left to do but exit."""
    ran = False

    def handler() -> None:
        nonlocal ran
        if ran or atexit._ncallbacks() != registered:
            return  # the nested run below reached it again, or another came after it
        ran = True
        atexit._run_exitfuncs()
        os._exit(_flush_standard_streams(code))

    atexit.register(handler)
    registered = atexit._ncallbacks()


def children(parent: int | None = None) -> set[int]:
    """The child processes of `parent` (this process by default), from Linux's /proc; empty
    where there is no /proc."""
    wanted = str(os.getpid() if parent is None else parent)
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    stat = fh.read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1 and fields[1] == wanted:
                out.add(int(entry))
    return out
