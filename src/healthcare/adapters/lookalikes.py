"""Login names compared as they look: two names a reader cannot tell apart are one name.

The key of a username or an email is its confusable skeleton (Unicode TS #39), taken after
NFKC and case folding (the form names are already unique in, ``identity_key``), with
combining marks dropped, so that ``admin``, ``ADMIN``, and ``admin`` with a Cyrillic a
(U+0430), a dotless i (U+0131), a capital I with a dot (U+0130) or in fullwidth letters
all have one key. Stricter than TS #39 by
design: dropping marks also makes ``josé`` and ``jose`` one name, and the skeleton makes
``paul1`` and ``paull`` one. A refused look-alike costs a newcomer another choice; an
accepted one lets an impostor pass for someone else.

The confusables come from confusable-homoglyphs (pinned: the keys are stored, so new
Unicode data means recomputing them in a migration). It ships Unicode's confusables.txt
as a two-way table of pairs, without the direction of each mapping; every class of
look-alikes in it is a star around its prototype (the one member mapped to by the others,
and the only one that can be more than one character), which ``_prototypes`` recovers.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import defaultdict
from importlib.resources import files

from healthcare.domain.rules import identity_key

_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")  # the table wraps RTL text in them


def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype (characters that are their own are left out)."""
    table = json.loads(files("confusable_homoglyphs").joinpath("confusables.json").read_text())
    neighbours: dict[str, set[str]] = defaultdict(set)
    for text, pairs in table.items():
        for pair in pairs:
            a, b = text.translate(_DIRECTION_MARKS), pair["c"].translate(_DIRECTION_MARKS)
            neighbours[a].add(b)
            neighbours[b].add(a)
    prototypes: dict[str, str] = {}
    for text, around in neighbours.items():
        if len(text) != 1 or len(around) != 1:
            continue  # a prototype (several look like it, or it is several characters)
        (other,) = around
        # Two characters alike and nothing else: either serves; the lesser, both ways.
        if len(other) > 1 or len(neighbours[other]) > 1 or other < text:
            prototypes[text] = other
    return prototypes


_PROTOTYPE = _prototypes()


def skeleton(value: str) -> str:
    """What ``value`` looks like, as text: look-alikes have the same skeleton."""
    folded = unicodedata.normalize("NFD", identity_key(value))
    unmarked = "".join(c for c in folded if unicodedata.category(c) != "Mn")
    mapped = "".join(_PROTOTYPE.get(c, c) for c in unmarked)
    # Prototypes may be capitals (0 looks like O): fold once more.
    return unicodedata.normalize("NFD", mapped).casefold()


def login_name_key(value: str) -> str:
    """The stored form of ``skeleton(value)``: fixed length, however long the name."""
    return hashlib.sha256(skeleton(value).encode("utf-8")).hexdigest()


# What a registration is told when one of its names is, or looks like, another account's.
LOOKALIKE_TAKEN = {
    "username": "That username is, or looks like, another account's username or email",
    "email": "That email is, or looks like, another account's username or email",
}


def login_name_keys(username: str, email: str) -> dict[str, str]:
    """The keys of an account's two names, by field; one when both look alike (an account
    whose username is its email)."""
    keys = {"username": login_name_key(username)}
    if (email_key := login_name_key(email)) != keys["username"]:
        keys["email"] = email_key
    return keys
