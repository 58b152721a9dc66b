"""The blog's views: HTML list, detail and create (a form with CSRF), and a
small JSON API (create a post, list the newest, add a comment)."""

import json

from django import forms
from django.db import transaction
from django.db.models import Count, F
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import Comment, Post


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "body"]


def post_list(request):
    posts = Post.objects.annotate(comment_count=Count("comments"))[:20]
    return render(request, "blog/post_list.html", {"posts": posts, "total": Post.objects.count()})


def post_detail(request, pk):
    with transaction.atomic():
        Post.objects.filter(pk=pk).update(views=F("views") + 1)
        post = get_object_or_404(Post, pk=pk)
    return render(request, "blog/post_detail.html", {"post": post, "comments": post.comments.all()})


@require_http_methods(["GET", "POST"])
def post_create(request):
    form = PostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        post = form.save()
        return redirect("blog:detail", pk=post.pk)
    return render(request, "blog/post_form.html", {"form": form}, status=400 if request.method == "POST" else 200)


def _post_json(post):
    return {"id": post.pk, "title": post.title, "body": post.body, "views": post.views,
            "created": post.created.isoformat()}


def _json_body(request):
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@csrf_exempt
@require_http_methods(["GET", "POST"])
def api_posts(request):
    if request.method == "GET":
        posts = Post.objects.all()[: int(request.GET.get("limit", "20"))]
        return JsonResponse({"count": Post.objects.count(), "posts": [_post_json(post) for post in posts]})
    data = _json_body(request)
    form = PostForm(data)
    if data is None or not form.is_valid():
        return HttpResponseBadRequest(json.dumps({"errors": form.errors if data is not None else "not JSON"}),
                                      content_type="application/json")
    return JsonResponse(_post_json(form.save()), status=201)


@csrf_exempt
@require_http_methods(["POST"])
def api_comment(request, pk):
    data = _json_body(request)
    if data is None or not data.get("author") or not data.get("text"):
        return HttpResponseBadRequest('{"errors": "author and text are required"}', content_type="application/json")
    with transaction.atomic():
        post = get_object_or_404(Post.objects.select_for_update(), pk=pk)
        comment = Comment.objects.create(post=post, author=data["author"], text=data["text"])
        if data.get("fail"):
            raise RuntimeError("failing inside the transaction, as asked")
    return JsonResponse({"id": comment.pk, "post": post.pk, "comments": post.comments.count()}, status=201)
