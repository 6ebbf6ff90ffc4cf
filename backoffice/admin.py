"""Registers the back office's own pages on the admin site."""

from django.contrib import admin

from backoffice.views import activity_view

admin.site.register_view("activity/", activity_view, "ledgerx_activity")
