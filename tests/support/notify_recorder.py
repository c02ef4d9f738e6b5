"""A notify command for tests: appends what it received (arguments, stdin JSON) to the file named by its first
argument; ``--exit N`` makes it fail, ``--hang`` makes it outlive any timeout."""

from __future__ import annotations

import json
import sys
import time

if __name__ == "__main__":
    out, *args = sys.argv[1:]
    stdin = sys.stdin.read()
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"argv": args, "event": json.loads(stdin)}) + "\n")
    if "--hang" in args:
        time.sleep(600)  # the command being tested hangs; the watcher must kill it
    if "--exit" in args:
        raise SystemExit(int(args[args.index("--exit") + 1]))
