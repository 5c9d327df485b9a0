"""Error types shared by every layer.

:class:`UserError` and its subclasses carry a message meant for the person who made the
request; the CLI prints it and exits with status 2, the JSON API answers with its
``status`` (4xx). Any other exception is a bug and is reported without internals.
"""


def shown(value, limit: int = 60) -> str:
    """``value`` as a message quotes what someone sent: its ``repr``, cut to ``limit``
    characters; an integer of more than 15 digits (JSON's integers are exact: one may be
    too large for a float, or thousands of digits long) as its number of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, float):
        return f"{value:g}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class UserError(Exception):
    """A request that cannot be carried out because of what the user asked for."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        out = {"error": self.message, "type": type(self).__name__}
        if self.field:
            out["field"] = self.field
        return out


class NotFound(UserError):
    """The named thing (collection, dataset, product, object) does not exist."""

    status = 404


class Conflict(UserError):
    """The request would overwrite something that already exists."""

    status = 409


class Forbidden(UserError):
    """The requester may not see or change this."""

    status = 403


class TooLarge(UserError):
    """An upload, a form field or a result is over a configured limit."""

    status = 413


class TooManyRequests(UserError):
    """The client is over its request budget; ``retry_after`` says for how many seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class IngestError(UserError):
    """A collection directory or catalog file cannot be ingested as it is."""


class PluginError(Exception):
    """Plugins are inconsistent: a misspelled hook, a duplicate name, a bad return value.

    This is an operator's error found at start-up, not a user's.
    """
