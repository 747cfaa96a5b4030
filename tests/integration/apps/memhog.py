"""Grows its memory to MB megabytes, then idles."""

import os
import time

hoard = bytearray(int(os.environ.get("MB", "64")) * 1024 * 1024)
for i in range(0, len(hoard), 4096):
    hoard[i] = 1
print("hoarding", flush=True)
while True:
    time.sleep(3600)
