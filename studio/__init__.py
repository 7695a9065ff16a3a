"""Fine-tuning Studio: teach a general-purpose language model your own job from a browser.

Run `studio --help` for the commands, or `python launch.py` for the web app.
"""

__version__ = "0.1.0"
