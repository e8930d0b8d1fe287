from django.urls import path

from plane_integration.views import PlaneWebhookView

urlpatterns = [
    path("webhooks/plane/", PlaneWebhookView.as_view(), name="plane-webhook"),
]
