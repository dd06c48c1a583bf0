"""The one rule for corpus and run names, since both become file or folder names: letters,
digits, '.', '_' and '-', starting with a letter or digit, at most NAME_MAX characters, never
'..'. `check_name` refuses a name given by a user; `make_name` makes one from any text.
(paths.py names them too, where most callers find them.)
"""

from __future__ import annotations

import re

from charrnn_cli.errors import UsageError

NAME_MAX = 100  # characters in a corpus or run name
NAME_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_name(text: str) -> bool:
    """Whether `text` is a valid corpus or run name (see `check_name`)."""
    return bool(NAME_SHAPE.fullmatch(text)) and ".." not in text and len(text) <= NAME_MAX


def check_name(name: str, kind: str) -> str:
    """Return `name` if it is safe as a file or folder name, else raise UsageError naming the
    `kind` ("corpus", "run"). No '/', no '..', no leading dot or dash, so a name can neither
    escape its folder nor hide in it."""
    if not is_name(name):
        raise UsageError(
            f"invalid {kind} name {name!r}: not allowed; use letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, at most {NAME_MAX} characters (no '/' or '..')"
        )
    return name


def make_name(text: str, fallback: str = "corpus", limit: int = NAME_MAX) -> str:
    """`text` made into a valid name (`is_name`) of at most `limit` characters: other
    characters become '-', runs of dots one dot, and what may not start or end a name is cut;
    `fallback` when nothing is left. Every name charrnn makes itself goes through here."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    name = re.sub(r"\.{2,}", ".", name).lstrip("._-")[:limit].rstrip("-")
    return name if is_name(name) else fallback
