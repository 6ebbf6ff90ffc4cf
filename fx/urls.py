from django.urls import path

from fx import apis

urlpatterns = [
    path("fx/quotes", apis.QuoteCreateApi.as_view(), name="fx-quotes"),
]
