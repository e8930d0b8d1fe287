from django.urls import path

from operations.views import metrics

urlpatterns = [path("", metrics, name="metrics")]
