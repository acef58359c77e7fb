"""An agent that starts but never listens, so it never answers /ping."""

import time

while True:
    time.sleep(60)
