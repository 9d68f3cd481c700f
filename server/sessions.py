"""Sessions that end (issue 13, item 6).

Every user has a session generation. A web session (the signed cookie) and a device's
bearer token carry the generation they were issued under, and sign nobody in once it is
no longer the user's: so one write ends every cookie and every token of that user, a
copied cookie included. Raised by logging out (web or app), a password reset
(`fieldvisit create-user` on an existing user) and disabling the account
(`fieldvisit disable-user`, or the admin page /admin/users).
"""

from __future__ import annotations

from server.models import User


def end_sessions(user: User) -> None:
    """Every web session and device token of `user` stops working (commit to apply)."""
    user.session_generation = (user.session_generation or 0) + 1


def disable_user(user: User) -> None:
    """The account cannot sign in any more, and every session of it has ended."""
    user.active = False
    end_sessions(user)


def enable_user(user: User) -> None:
    """The account may sign in again (with a new sign-in: old sessions stay ended)."""
    user.active = True
