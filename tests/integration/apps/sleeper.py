"""A well-behaved long-running app: reports its identity, exits 0 on SIGTERM."""

import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"ready app={os.environ.get('WHARF_APP')} instance={os.environ.get('WHARF_INSTANCE')} "
      f"port={os.environ.get('PORT')} argv={sys.argv[1:]} uid={os.getuid()}", flush=True)
print("to stderr", file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
