"""The lease agent's command line: `scan`, `poll` and `cleanup`, each answered in JSON on stdout."""

import json
import sys

# in-package imports: a host runs agent, agentcleanup and agentmain as one program, without them
from virttui.locks.agent import every_candidate, poll, scan
from virttui.locks.agentcleanup import _write_outcomes, cleanup

# end of in-package imports


def main(argv):
    if len(argv) >= 3 and argv[0] == "scan":
        print(json.dumps(scan(argv[1], argv[2], len(argv) > 3 and argv[3] == "sanlock")))
        return 0
    if len(argv) >= 3 and argv[0] == "poll":
        options = _poll_options(argv[3:])
        if options is not None:
            print(json.dumps(poll(argv[1], argv[2], **options)))
            return 0
    if len(argv) >= 4 and argv[0] == "cleanup" and (argv[3:] == ["--all"] or argv[3] == "--"):
        if argv[3] == "--all":  # a file named "--all" arrives as "-- --all", never as this
            names, error = every_candidate(argv[1], argv[2])
            if error:
                print(json.dumps({"fatal": error}))
                return 0
            print(json.dumps({"total": len(names)}), flush=True)
        else:
            names = argv[4:]
        _write_outcomes(cleanup(argv[1], argv[2], names))
        return 0
    print(json.dumps({"fatal": "usage: agent scan DIR LOCKSPACE [sanlock] | poll DIR LOCKSPACE [OPTION...] | "
                                "cleanup DIR LOCKSPACE (--all|-- NAME...)"}))
    return 2


def _poll_options(args):
    """poll's options: sanlock, identity, no-heads, list (the directory, knowing no fingerprint),
    known=FP,FP... and reread=NAME,NAME... (each may repeat: one argument stays under Linux's cap)."""
    options = {"with_sanlock": False, "known": None, "reread": [], "identity": False, "with_heads": True,
               "budget": 0, "rate": 0.0}
    for arg in args:
        key, _, value = arg.partition("=")
        if arg == "sanlock":
            options["with_sanlock"] = True
        elif arg == "identity":
            options["identity"] = True
        elif arg == "no-heads":
            options["with_heads"] = False
        elif arg == "list":
            options["known"] = options["known"] or set()
        elif key == "known":
            options["known"] = (options["known"] or set()) | set(filter(None, value.split(",")))
        elif key == "reread":
            options["reread"].extend(filter(None, value.split(",")))
        elif key in ("budget", "rate") and value.replace(".", "", 1).isdigit():
            options[key] = float(value) if key == "rate" else int(value)
        else:
            return None
    return options


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
