"""Authors and their posts."""

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for

from .db import get_db

bp = Blueprint("blog", __name__)


@bp.route("/")
def index():
    posts = get_db().execute(
        "SELECT p.id, title, body, created, author_id, username"
        " FROM post p JOIN user u ON p.author_id = u.id"
        " ORDER BY created DESC, p.id DESC"
    ).fetchall()
    return render_template("blog/index.html", posts=posts)


@bp.route("/register", methods=("POST",))
def register():
    username = request.form.get("username", "").strip()
    if not username:
        abort(400, "Username is required.")
    db = get_db()
    try:
        cursor = db.execute("INSERT INTO user (username) VALUES (?)", (username,))
        db.commit()
    except db.IntegrityError:
        return f"User {username} is already registered.", 409
    return jsonify(id=cursor.lastrowid, username=username), 201


@bp.route("/create", methods=("POST",))
def create():
    title, body = request.form.get("title", ""), request.form.get("body", "")
    db = get_db()
    author = db.execute("SELECT id FROM user WHERE username = :name", {"name": request.form.get("author")}).fetchone()
    if not title or author is None:
        abort(400, "A title and a registered author are required.")
    db.execute("INSERT INTO post (title, body, author_id) VALUES (?, ?, ?)", (title, body, author["id"]))
    db.commit()
    return redirect(url_for("blog.index"))


@bp.route("/stats")
def stats():
    db = get_db()
    (posts,) = db.execute("SELECT count(*) FROM post").fetchone()
    authors = db.execute(
        "SELECT username, count(p.id) AS posts FROM user u LEFT JOIN post p ON p.author_id = u.id"
        " GROUP BY u.id ORDER BY username"
    ).fetchall()
    return jsonify(posts=posts, authors={row["username"]: row["posts"] for row in authors})
