"""Writes numbered lines quickly: COUNT lines to stdout, then sleeps."""

import os
import sys
import time

count = int(os.environ.get("COUNT", "1000"))
pad = "x" * int(os.environ.get("PAD", "0"))
for i in range(count):
    sys.stdout.write(f"line {i} {pad}\n")
sys.stdout.flush()
while True:
    time.sleep(3600)
