from django.urls import path

from plane_integration.views import PlaneWebhookView

urlpatterns = [
    path("webhooks/plane/", PlaneWebhookView.as_view(), name="plane-webhook"),
    # Without the slash too: a redirect would lose the POST's body (and DEBUG refuses it).
    path("webhooks/plane", PlaneWebhookView.as_view()),
]
