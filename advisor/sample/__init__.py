"""The bundled sample fleet: a generator, not a source. :mod:`advisor.sample.fleet`
simulates eight weeks of a 60-volume cluster with a fixed seed and writes what a watch of
it would have recorded (a kubectl List); :func:`load_sample` reads that List through the
file source, as a collection of a real cluster's export is read."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from advisor.sample.fleet import (
    COLLECTED_AT,
    SEED,
    VERSION,
    WEEKS,
    build_sample_fleet,
    sample_fleet,
    simulate_sample,
    to_kubectl_list,
    write_sample,
)
from advisor.sources.base import LoadResult

__all__ = ["COLLECTED_AT", "SEED", "VERSION", "WEEKS", "build_sample_fleet", "load_sample",
           "sample_fleet", "simulate_sample", "to_kubectl_list", "write_sample"]


def load_sample(seed: int | None = None) -> LoadResult:
    """The sample fleet (eight weeks of a 60-volume cluster made by the simulator with a
    fixed seed), read through the file source as a collected kubectl List would be (so
    observed at its export time, as ``advisor collect`` of the written file observes
    it), and tagged cluster ``sample``. Made once per process and seed (it takes seconds);
    each call gets its own copy of the frames."""
    made = _load_sample(SEED if seed is None else seed)
    return LoadResult({k: df.copy() for k, df in made.frames.items()}, Counter(made.read),
                      list(made.problems), list(made.files))


@lru_cache(maxsize=1)
def _load_sample(seed: int) -> LoadResult:
    from advisor.sources.files import load_document

    return load_document(build_sample_fleet(seed), source="sample", cluster="sample")
