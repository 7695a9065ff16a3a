"""Fine-tuning Studio: teach a general-purpose language model your own job from a browser.

Run `studio --help` for the commands, or `python launch.py` for the web app.
"""

import os

# OpenMP threads that spin while waiting make two busy processes (a training child and the app's
# chat, or two runs) slow each other down many times over on a small CPU; passive waiting avoids it.
# It must be set before torch loads its OpenMP runtime, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
