"""Errors raised when a request is refused before it does any work.

GuardError
 ├── BodyRefused              the body can't be let through to a parser
 │    ├── BodyTooLarge        over the route's byte limit (413)
 │    ├── BodyTooDeep         JSON nested deeper than the route allows (400)
 │    └── NulCharacter        a NUL character in text input (400)
 └── RateLimited              a limit per client or per wallet is reached (429)
      └── TooManyStreams      too many live streams open at once (429)
"""

from __future__ import annotations


class GuardError(Exception):
    """Root of the request guard's errors."""


class BodyRefused(GuardError):
    """Raised when a request body is refused before parsing."""


class BodyTooLarge(BodyRefused):
    """Raised when a body is longer than the route accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this route accepts ({limit:,} bytes)")
        self.limit = limit


class BodyTooDeep(BodyRefused):
    """Raised when a JSON body nests arrays and objects deeper than the route accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the JSON body nests arrays and objects more than {limit} levels deep; "
            "no request of this API needs that"
        )
        self.limit = limit


class NulCharacter(BodyRefused):
    """Raised when the path, query or body carries a NUL character, which no text field takes."""

    def __init__(self, where: str) -> None:
        super().__init__(f"the {where} contains a NUL character (\\u0000), which no field accepts")
        self.where = where


class RateLimited(GuardError):
    """Raised when a client or wallet has used up a rate limit; ``retry_after`` is in seconds."""

    def __init__(self, what: str, limit: str, retry_after: int) -> None:
        super().__init__(
            f"too many requests: {what} is limited to {limit}; try again in {retry_after} s"
        )
        self.what = what
        self.limit = limit
        self.retry_after = retry_after


class TooManyStreams(RateLimited):
    """Raised when a client or wallet already holds as many live streams as it may."""

    def __init__(self, what: str, cap: int, retry_after: int) -> None:
        GuardError.__init__(
            self,
            f"too many live streams: {what} may hold {cap} at once; close one (or poll "
            f"instead) and try again in {retry_after} s",
        )
        self.what = what
        self.limit = f"{cap} open streams"
        self.retry_after = retry_after
