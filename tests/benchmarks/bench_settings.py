"""Settings for benchmarks: Stageboard's own, plus a bare view to compare with."""

from pipeline.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.bench_urls"
