"""What the three ways of publishing to the Hugging Face Hub share (a model's weights and card, the app as a Space,
a dataset of corrected tags): the token, a clear sentence without one, and a failure told without the token,
with every local file left as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

NO_TOKEN = "no Hugging Face token: set HF_TOKEN or run `hf auth login`, then {again}"


def hub():
    try:
        import huggingface_hub
    except ImportError as e:  # pragma: no cover - it is in requirements.txt
        raise ImportError("fmnist's Hub features need huggingface_hub: pip install huggingface_hub") from e
    return huggingface_hub


def client(token: str | None, api, error: type[Exception], again: str):
    """(the API client, the token): api as given (a caller's own client, already signed in), or a client for the
    token from the argument, $HF_TOKEN or `hf auth login`; error(NO_TOKEN) when there is none."""
    hf = hub()
    token = token or hf.get_token()
    if api is None:
        if not token:
            raise error(NO_TOKEN.format(again=again))
        api = hf.HfApi(token=token)
    return api, token


@contextmanager
def told(error: type[Exception], what: str, token: str | None, then: str) -> Iterator[None]:
    """Any failure inside (the client's HTTP errors, OS errors) raised again as error: "WHAT failed (why);
    nothing local was changed, THEN", the token replaced by *** wherever it appears."""
    try:
        yield
    except Exception as e:
        text = f"{type(e).__name__}: {e}"
        if token:
            text = text.replace(token, "***")
        raise error(f"{what} failed ({text}); nothing local was changed, {then}") from None
