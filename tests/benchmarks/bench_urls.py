from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from pipeline.urls import urlpatterns as stageboard


@csrf_exempt
def bare(request):
    """The cheapest Django answer behind the same middleware: the baseline."""
    return HttpResponse(b'{"status": "ok"}', status=202, content_type="application/json")


urlpatterns = [path("bare/", bare), *stageboard]
