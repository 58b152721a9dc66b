from django.contrib.auth.models import Group
from django.db import connection, connections
from django.http import JsonResponse
from django.urls import path


def groups(request):
    if request.method == "POST":
        Group.objects.create(name=request.body.decode())
    return JsonResponse({"groups": sorted(Group.objects.values_list("name", flat=True)),
                         "vendor": connection.vendor, "backend": type(connections["default"]).__module__})


urlpatterns = [path("groups", groups)]
