"""Fine-tuning Studio: teach a general-purpose language model your own job from a browser.

Run `studio --help` for the commands, or `python launch.py` for the web app.
"""

import os

# OpenMP threads that spin a long time while waiting make two busy processes (a training child and
# the app's chat, or two runs) slow each other down many times over on a small CPU. A short spin
# keeps single-process speed and avoids that. It must be set before torch loads its OpenMP runtime,
# hence here: GOMP_SPINCOUNT for GNU OpenMP (Linux wheels), KMP_BLOCKTIME (ms) for LLVM/Intel OpenMP.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
os.environ.setdefault("KMP_BLOCKTIME", "1")

__version__ = "0.1.0"
