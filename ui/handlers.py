"""The one wrapper every event and API handler goes through.

It gives the handler the request's identity (`User`: owner + token from gradio's OAuth session, "local" off a
Space), applies the sign-in rule, and turns every exception into one sentence (ui.errors.as_gr_error).

    @handler("check data")                 # needs sign-in on a Space
    def run_check(user, source, ...): ...

    @handler(None)                          # viewing: anyone, user.owner may be None
    def refresh(user, run_id): ...

    @handler("start runs", launch=True)     # sign-in + STUDIO_ALLOWED_USERS

The wrapped function keeps the handler's own inputs and adds `profile: gr.OAuthProfile | None` and
`oauth: gr.OAuthToken | None`, which gradio fills from the session cookie.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass

import gradio as gr

from core.errors import StudioError
from ui import auth
from ui.errors import as_gr_error


@dataclass(frozen=True)
class User:
    owner: str | None
    token: str | None = None
    profile: dict | None = None

    @property
    def signed_in(self) -> bool:
        return bool(self.owner)


def sign_in_sentence(action: str) -> str:
    return f"Sign in with Hugging Face (button at the top) to {action}; viewing the page needs no sign-in."


def user_of(profile=None, oauth=None, action: str | None = None, launch: bool = False) -> User:
    """The request's User, or StudioError with the sign-in (or allowlist) sentence."""
    owner, token = auth.identity(profile, oauth)
    user = User(owner, token, dict(profile) if profile is not None else None)
    if action and not owner:
        raise StudioError(sign_in_sentence(action))
    if launch:
        refusal = auth.may_launch(owner, user.profile)
        if refusal:
            raise StudioError(refusal)
    return user


def handler(action: str | None, *, launch: bool = False):
    """Decorate `fn(user, *inputs)`; `action` completes "Sign in with Hugging Face (button at the top) to ...",
    None for views that anyone may see (they must cope with user.owner None)."""

    def decorate(fn):
        try:
            hints = typing.get_type_hints(fn)  # resolved in fn's own module (postponed annotations)
        except (NameError, TypeError):
            hints = {}
        params = [  # drop `user`; real types, so gradio (and gr.api's schema) can read them here
            p.replace(annotation=hints.get(p.name, inspect.Parameter.empty))
            for p in list(inspect.signature(fn).parameters.values())[1:]
        ]
        extra = [
            inspect.Parameter(
                "profile", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.OAuthProfile | None
            ),
            inspect.Parameter(
                "oauth", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.OAuthToken | None
            ),
        ]
        n = len(params)

        def split(args, kwargs):
            args = list(args)
            profile = kwargs.pop("profile", args[n] if len(args) > n else None)
            oauth = kwargs.pop("oauth", args[n + 1] if len(args) > n + 1 else None)
            return args[:n], kwargs, profile, oauth

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def wrapped(*args, **kwargs):
                args, kwargs, profile, oauth = split(args, kwargs)
                try:
                    user = user_of(profile, oauth, action, launch)
                    yield from fn(user, *args, **kwargs)
                except gr.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure reaches the page as one sentence
                    raise as_gr_error(exc) from exc

        else:

            @functools.wraps(fn)
            def wrapped(*args, **kwargs):
                args, kwargs, profile, oauth = split(args, kwargs)
                try:
                    user = user_of(profile, oauth, action, launch)
                    return fn(user, *args, **kwargs)
                except gr.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure reaches the page as one sentence
                    raise as_gr_error(exc) from exc

        del wrapped.__wrapped__  # gradio must see this signature, not fn's
        returns = hints.get("return", inspect.Signature.empty)
        wrapped.__signature__ = inspect.Signature(params + extra, return_annotation=returns)
        annotations = {p.name: p.annotation for p in params if p.annotation is not inspect.Parameter.empty}
        wrapped.__annotations__ = {**annotations, "profile": gr.OAuthProfile | None, "oauth": gr.OAuthToken | None}
        if "return" in hints:
            wrapped.__annotations__["return"] = hints["return"]
        return wrapped

    return decorate


__all__ = ["User", "handler", "user_of", "sign_in_sentence", "StudioError"]
