from django.urls import path

from git_hosts.views import ForgejoWebhookView, GitHubWebhookView, GitLabWebhookView

urlpatterns = []
for name, view in (
    ("github", GitHubWebhookView),
    ("gitlab", GitLabWebhookView),
    ("forgejo", ForgejoWebhookView),
):
    urlpatterns += [
        path(f"webhooks/{name}/", view.as_view(), name=f"{name}-webhook"),
        # Without the slash too: a redirect would lose the POST's body.
        path(f"webhooks/{name}", view.as_view()),
    ]
