"""The one error type the studio shows to people as it is: a sentence, no traceback."""


class StudioError(Exception):
    """A problem the user can act on, described in one sentence."""
