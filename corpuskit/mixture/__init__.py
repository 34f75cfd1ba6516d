"""Mixtures: one token build made of several catalog entries in chosen proportions.

A ``type: mix`` entry (:mod:`corpuskit.catalog_mix`) names components with weights or token
budgets. ``build`` then:

1. fetches (when missing) and cleans each component with its own recipe (``build_clean``); a
   component with ``subset``/``max_bytes`` is that slice, its own raw artifact;
2. trains ONE tokenizer from the mixture's recipe on the components' clean train text, each
   sampled in proportion to its weight (a hash of each line decides, so the sample does not
   depend on order or worker count), so ids mean the same in every component;
3. encodes each component's splits with it (``encode.pack_splits``) into a scratch folder;
4. assembles ``tokens/<mix>/<fp>/``: ``train.bin`` holds, per component, whole documents in a
   seeded order until its target is reached (the last one cut so that the share is exact;
   a component smaller than its target is walked again, and the repetition is counted in
   ``meta.json`` and said in one warning line), the documents of all components interleaved
   in a seeded order; ``val.bin`` (and ``test.bin``) hold every component's held-out text,
   and ``val.<component>.bin/.idx`` each one's alone, so that ``train``/``eval`` report the
   loss per component.

The artifact follows the project's rules: staging folder, ``meta.json``, manifest written last
with every file's size and hash, ``LATEST`` pointer; two builds are byte-identical.

Modules: ``components.py`` (the catalog side: resolving, fetching, the plan), ``sampling.py``
(targets and which documents), ``files.py`` (the packed files), ``build.py`` (the artifact).
"""

from corpuskit.mixture.build import build_mix, build_mix_entry
from corpuskit.mixture.components import (
    Component,
    fetch_mix,
    format_mix_plan,
    is_mix,
    refuse_mixture,
    resolve_components,
)
from corpuskit.mixture.files import SHARE_TOLERANCE
from corpuskit.mixture.sampling import Selection, select_documents, token_targets

__all__ = [
    "SHARE_TOLERANCE",
    "Component",
    "Selection",
    "build_mix",
    "build_mix_entry",
    "fetch_mix",
    "format_mix_plan",
    "is_mix",
    "refuse_mixture",
    "resolve_components",
    "select_documents",
    "token_targets",
]
