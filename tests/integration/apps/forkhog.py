"""A parent that forks CHILDREN children which each grow to MB megabytes, as gunicorn's
workers would; the parent itself stays small. Says "hoarding" once every child has."""

import os
import time

children = int(os.environ.get("CHILDREN", "3"))
size = int(os.environ.get("MB", "40")) * 1024 * 1024
read_end, write_end = os.pipe()
for _ in range(children):
    if os.fork() == 0:
        os.close(read_end)
        hoard = bytearray(size)
        for i in range(0, size, 4096):
            hoard[i] = 1
        os.write(write_end, b".")
        while True:
            time.sleep(3600)
os.close(write_end)
for _ in range(children):
    os.read(read_end, 1)
print("hoarding", flush=True)
while True:
    time.sleep(3600)
