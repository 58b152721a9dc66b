import datetime

from django.contrib.auth.models import Group, User
from django.db import connection, connections
from django.db.models import DateTimeField, ExpressionWrapper, F, StdDev, Variance
from django.db.models.functions import MD5, ExtractWeekDay, TruncDay
from django.http import JsonResponse
from django.urls import path


def groups(request):
    if request.method == "POST":
        Group.objects.create(name=request.body.decode())
    return JsonResponse({"groups": sorted(Group.objects.values_list("name", flat=True)),
                         "vendor": connection.vendor, "backend": type(connections["default"]).__module__})


def calendar(request):
    """Lookups that Django's SQLite backend runs as SQL functions of its own
    (in the project's time zone): month, week day, truncation, dates(),
    regex, MD5, datetime + duration, the spread aggregates."""
    joined = datetime.datetime(2024, 3, 31, 23, 30, tzinfo=datetime.timezone.utc)
    User.objects.update_or_create(username="ada", defaults={"date_joined": joined})
    ada = User.objects.filter(username="ada")
    later = ExpressionWrapper(F("date_joined") + datetime.timedelta(hours=1, microseconds=5),
                              output_field=DateTimeField())
    spread = Group.objects.aggregate(StdDev("id"), Variance("id", sample=True))
    return JsonResponse({
        "april": ada.filter(date_joined__month=4).count(),
        "week_day": ada.annotate(day=ExtractWeekDay("date_joined")).values_list("day", flat=True)[0],
        "day": ada.annotate(day=TruncDay("date_joined")).values_list("day", flat=True)[0].isoformat(),
        "months": [month.isoformat() for month in User.objects.dates("date_joined", "month")],
        "regex": sorted(Group.objects.filter(name__regex=r"^(ad|ed)").values_list("name", flat=True)),
        "md5": ada.annotate(digest=MD5("username")).values_list("digest", flat=True)[0],
        "later": ada.annotate(later=later).values_list("later", flat=True)[0].isoformat(),
        "spread": [round(value, 6) for value in spread.values()],
    })


urlpatterns = [path("groups", groups), path("calendar", calendar)]
