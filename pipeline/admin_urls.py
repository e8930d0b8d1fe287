"""The admin's URLs, under /admin/, imported on the first request there (or the first
reverse()), not with the root URLconf."""

from django.contrib import admin

urlpatterns = admin.site.get_urls()
