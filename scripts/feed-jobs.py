#!/usr/bin/env python3
"""Feed an NDJSON file to a stage one job at a time, as a live pipeline does.

usage: feed-jobs.py FILE COMMAND [ARGS...]

Writes FILE's lines to COMMAND's stdin up to and including each job_end, then reads
COMMAND's output (dropped) until the job_end it passes on, and only then writes the
next job: the stage never finds the next job's input waiting (store stores each job in
a statement of its own). For scripts/bench-db.sh.
"""
import subprocess
import sys


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 64
    stage = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with open(sys.argv[1], "rb") as f:
        for line in f:
            stage.stdin.write(line)
            if b'"kind":"job_end"' not in line:
                continue
            stage.stdin.flush()
            for out in stage.stdout:
                if b'"kind":"job_end"' in out:
                    break
            else:
                break
    stage.stdin.close()
    for _ in stage.stdout:
        pass
    return stage.wait()


if __name__ == "__main__":
    sys.exit(main())
