"""Writes "reloaded" on each SIGHUP (as gunicorn reloads its workers), "usr1" on SIGUSR1."""

import signal
import sys
import time


def say(word: str):
    def handler(signum: int, frame: object) -> None:
        print(word, flush=True)
    return handler


signal.signal(signal.SIGHUP, say("reloaded"))
signal.signal(signal.SIGUSR1, say("usr1"))
print("ready", flush=True)
sys.stdout.flush()
while True:
    time.sleep(3600)
