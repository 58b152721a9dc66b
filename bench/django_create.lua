-- wrk script for bench/django.sh: POST /api/posts with a small JSON post.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "A benchmark post", "body": "Written by wrk to measure the create view."}'
