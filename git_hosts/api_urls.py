"""The Git hosts' part of the API, under /api/ (imported lazily, like pipeline.api_urls)."""

from django.urls import path

from git_hosts.api import GitEventList

urlpatterns = [path("git-events/", GitEventList.as_view(), name="git-events")]
