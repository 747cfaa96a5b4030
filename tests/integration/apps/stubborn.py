"""An app that ignores SIGTERM and leaves a grandchild that ignores it too."""

import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
                          "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "time.sleep(3600)"])
print(f"grandchild={child.pid}", flush=True)
while True:
    time.sleep(3600)
