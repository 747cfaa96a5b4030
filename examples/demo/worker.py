"""A background worker for the demo: does a unit of work every few seconds."""

import os
import signal
import sys
import time

running = True


def stop(signum: int, frame: object) -> None:
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
jobs = 0
print("worker started", flush=True)
while running:
    jobs += 1
    print(f"worker: finished job {jobs}", flush=True)
    if jobs % 5 == 0:
        print(f"worker: {jobs} jobs so far", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("WORK_INTERVAL", "3")))
print("worker: stopping cleanly", flush=True)
