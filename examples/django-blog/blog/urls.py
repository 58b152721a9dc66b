from django.urls import path

from . import views

app_name = "blog"
urlpatterns = [
    path("", views.post_list, name="list"),
    path("posts/<int:pk>/", views.post_detail, name="detail"),
    path("new/", views.post_create, name="create"),
    path("api/posts", views.api_posts, name="api-posts"),
    path("api/posts/<int:pk>/comments", views.api_comment, name="api-comment"),
]
