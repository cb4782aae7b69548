"""Class families of ImageNet-1k: ``--target family:bird`` pulls a dream toward any bird, not one species.

Each family is a set of class indices (ranges of the synset order, where the classes lie together) or names
(looked up in the model's categories). A zoom's ``--travel`` walks through ``TRAVEL_ORDER``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import DreamError, did_you_mean

FAMILIES: dict[str, tuple] = {
    "dog": (range(151, 269),),
    "bird": (range(7, 25), range(80, 101), range(127, 147)),
    "fish": (range(0, 7), range(389, 398)),
    "reptile": (range(33, 69),),
    "insect": (range(300, 327),),
    "cat": (range(281, 294),),
    "primate": (range(365, 385),),
    "sea": (range(107, 127),),  # jellyfish, anemones, corals, snails, crabs, lobsters
    "fruit": (range(948, 958),),
    "mushroom": (range(991, 998), "mushroom"),
    "flower": ("daisy", "yellow lady's slipper", "rapeseed", "pot", "hip"),
    "building": ("church", "palace", "castle", "monastery", "mosque", "dome", "boathouse", "library", "planetarium",
                 "stupa", "triumphal arch", "bell cote", "water tower", "beacon", "cinema", "greenhouse", "barn",
                 "prison", "bakery", "bookshop", "restaurant", "steel arch bridge", "suspension bridge", "viaduct"),
    "vehicle": ("sports car", "convertible", "jeep", "cab", "limousine", "minivan", "racer", "beach wagon",
                "pickup", "police van", "fire engine", "school bus", "steam locomotive", "streetcar"),
}
#: A zoom's --travel visits these in turn: alternating creatures and things, so each leg looks unlike the last.
TRAVEL_ORDER = ("bird", "building", "fish", "flower", "reptile", "vehicle", "insect", "fruit", "primate",
                "sea", "dog", "mushroom")


def family_indices(name: str, categories: Sequence[str]) -> tuple[int, ...]:
    """The class indices of family ``name`` among ``categories`` (ImageNet-1k's 1000 classes)."""
    if name not in FAMILIES:
        raise DreamError(f"unknown class family {name!r}",
                         did_you_mean(name, FAMILIES) or f"families: {', '.join(sorted(FAMILIES))}")
    if len(categories) != 1000:
        raise DreamError(f"class families need ImageNet-1k's 1000 classes (this model has {len(categories)})")
    first = [c.split(",")[0].strip().lower() for c in categories]
    out: list[int] = []
    for part in FAMILIES[name]:
        if isinstance(part, range):
            out.extend(part)
        else:
            out.append(first.index(part.lower()))
    return tuple(sorted(set(out)))
