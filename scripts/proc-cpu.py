#!/usr/bin/env python3
"""CPU time of a process tree, process by process, for scripts/bench-e2e.sh.

usage: proc-cpu.py ROOT_PID OUT_FILE [INTERVAL_SECONDS]

Every INTERVAL (default 0.05 s) it walks the descendants of ROOT_PID through
/proc/PID/task/TID/children and keeps, per process (pid and start time), its
command name and its user + system clock ticks as last seen. It ends when ROOT_PID
has ended, or on SIGTERM, and then writes one line per name: "NAME TICKS PROCESSES".
The second store of a pipeline (the one started after the first by the same parent)
is named store-2, the first store-1. Whatever a process spent after its last look
(at most one interval) is missed: the caller compares the sum with the total that
the kernel gives for reaped children.
"""
import os
import signal
import sys
import time


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3); utime, stime are fields 14, 15; starttime 22.
    return comm, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])


def children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(k) for k in f.read().split())
    except OSError:
        pass
    return kids


def main():
    root, out = int(sys.argv[1]), sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    seen = {}  # (pid, starttime) -> [comm, ppid, ticks]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        todo = [root]
        while todo:
            pid = todo.pop()
            s = stat(pid)
            if s is None:
                continue
            comm, ppid, ticks, start = s
            seen[(pid, start)] = [comm, ppid, ticks]
            todo.extend(children(pid))
        if stat(root) is None:
            break
        time.sleep(interval)
    totals = {}
    stores = {}
    for (pid, start), (comm, ppid, ticks) in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if pid == root:
            continue
        name = comm
        if comm == "store":
            stores[ppid] = stores.get(ppid, 0) + 1
            name = "store-1" if stores[ppid] == 1 else "store-2"
        t = totals.setdefault(name, [0, 0])
        t[0] += ticks
        t[1] += 1
    with open(out, "w") as f:
        for name, (ticks, n) in sorted(totals.items()):
            f.write(f"{name} {ticks} {n}\n")


if __name__ == "__main__":
    main()
