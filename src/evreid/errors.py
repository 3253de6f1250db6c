"""The one exception type that the CLI turns into a one-line message."""


class EvreidError(Exception):
    """A user-facing error: bad input, missing file, unknown key.

    The message must name the file, key or value at fault; the CLI prints it on
    one line and exits with status 2, without a traceback.
    """
