"""Fine-tuning Studio: teach a general-purpose language model your own job from a browser.

Run `studio --help` for the commands, or `python launch.py` for the web app.
"""

import os

# OpenMP threads that spin a long time while waiting make two busy processes (a training child and
# the app's chat, or two runs) slow each other down many times over on a small CPU. The app and its
# helpers spin briefly; a lone training process keeps the runtime's own waiting (spin_for_training).
# It must be set before torch loads its OpenMP runtime, hence here: GOMP_SPINCOUNT for GNU OpenMP
# (Linux wheels), KMP_BLOCKTIME (ms) for LLVM/Intel OpenMP.
SHORT_SPIN = {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}
_OURS = [key for key in SHORT_SPIN if key not in os.environ]
for _key in _OURS:
    os.environ[_key] = SHORT_SPIN[_key]


def spin_for_training(processes: int) -> str:
    """A lone training process (the one heavy process on the machine; the app's threads spin briefly)
    keeps the OpenMP runtime's own waiting, which trained 5-20% faster on 2 cores than the short spin.
    Several training processes on one machine keep the short spin, as they would otherwise spin against
    each other. Only before torch loads, and never over a value the user set. Returns the spin count in
    effect ('default': the runtime's own)."""
    import sys

    if processes == 1 and "torch" not in sys.modules:
        for key in _OURS:
            os.environ.pop(key, None)
    return openmp_spin()


def openmp_spin() -> str:
    """The GNU OpenMP spin count this process was given ('default': the runtime's own)."""
    return os.environ.get("GOMP_SPINCOUNT", "default")


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child process of the studio, without the spin count set here by
    default (the child chooses its own: short, or the training one)."""
    env = dict(os.environ, **extra)
    for key in _OURS:
        env.pop(key, None)
    return env


__version__ = "0.1.0"
