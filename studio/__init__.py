"""Fine-tuning Studio: teach a general-purpose language model your own job from a browser.

Run `studio --help` for the commands, or `python launch.py` for the web app.
"""

import os

# OpenMP threads that spin a long time while waiting make two busy processes (a training child and
# the app's chat, or two runs) slow each other down many times over on a small CPU. A short spin
# keeps single-process speed and avoids that. It must be set before torch loads its OpenMP runtime,
# hence here: GOMP_SPINCOUNT for GNU OpenMP (Linux wheels), KMP_BLOCKTIME (ms) for LLVM/Intel OpenMP.
SHORT_SPIN, TRAINING_SPIN = "1000", "30000"
_SPIN_IS_OURS = "GOMP_SPINCOUNT" not in os.environ
os.environ.setdefault("GOMP_SPINCOUNT", SHORT_SPIN)
os.environ.setdefault("KMP_BLOCKTIME", "1")


def spin_for_training(processes: int) -> str:
    """A lone training process (the one heavy process on the machine: the app's own threads spin briefly)
    waits longer before its threads sleep, which is 10-20% faster on a small CPU. Several training
    processes on one machine keep the short spin, as they would otherwise spin against each other. Only
    before torch loads, and not over a value the user set. Returns the spin count in effect."""
    import sys

    if _SPIN_IS_OURS and processes == 1 and "torch" not in sys.modules:
        os.environ["GOMP_SPINCOUNT"] = TRAINING_SPIN
    return os.environ["GOMP_SPINCOUNT"]


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child process of the studio, without the spin count set here by
    default (the child chooses its own: short, or the training one)."""
    env = dict(os.environ, **extra)
    if _SPIN_IS_OURS:
        env.pop("GOMP_SPINCOUNT", None)
    return env


__version__ = "0.1.0"
