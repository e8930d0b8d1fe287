import gc

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline"

    def ready(self):
        from pipeline import checks  # noqa: F401  (registers the system checks)

        # Everything imported so far lives as long as the process: keep it out of the
        # cyclic GC. The q cluster forks its workers after this, and a collection writing
        # to each object's header would copy every shared page into every process.
        gc.freeze()
