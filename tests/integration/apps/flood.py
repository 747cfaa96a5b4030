"""An app that floods its stdout once, then keeps printing a line every 0.1 s."""

import time

time.sleep(1)
for _ in range(300_000):
    print("x" * 99)
while True:
    print("after", flush=True)
    time.sleep(0.1)
