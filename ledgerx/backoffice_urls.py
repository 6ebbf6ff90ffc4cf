from django.urls import path

# The back-office API (role admin): routes to each app's admin_apis module.
urlpatterns: list = []
