"""Notes with authors: Flask and SQLAlchemy 2 (Core and the ORM) on the
app's host database.

``DATABASE_URL`` picks the database: ``wasmhost:///default`` (the default:
the declared database ``default``, ``wasmhost serve --database default``)
or a ``sqlite:///notes.sqlite`` file in the app's directory (the app's
file database of that path, nothing to declare). Both are kept by the
host, persistent and shared by every instance. The tables are created on
the first request (``create_all`` does nothing when they exist).
"""

import os
from datetime import datetime

from flask import Flask, abort, jsonify, request
from sqlalchemy import DateTime, ForeignKey, String, create_engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

engine = create_engine(os.environ.get("DATABASE_URL", "wasmhost:///default"))


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    notes: Mapped[list["Note"]] = relationship(back_populates="author", order_by="Note.id")


class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    created: Mapped[datetime] = mapped_column(DateTime, server_default=func.current_timestamp())
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="notes")


app = Flask(__name__)
_schema_ready = False


@app.before_request
def create_tables():
    global _schema_ready
    if not _schema_ready:
        Base.metadata.create_all(engine)
        _schema_ready = True


def note_json(note):
    return {"id": note.id, "text": note.text, "author": note.author.name, "created": note.created.isoformat()}


@app.post("/authors")
def add_author():
    name = (request.get_json(silent=True) or {}).get("name")
    if not isinstance(name, str) or not name:
        abort(400, "a JSON body with a name is required")
    try:
        with Session(engine) as session, session.begin():
            author = Author(name=name)
            session.add(author)
            session.flush()
            return jsonify(id=author.id, name=name), 201
    except IntegrityError:
        return jsonify(error=f"author {name} exists"), 409


@app.post("/notes")
def add_note():
    body = request.get_json(silent=True) or {}
    with Session(engine) as session, session.begin():
        author = session.scalar(select(Author).where(Author.name == body.get("author")))
        if author is None or not isinstance(body.get("text"), str):
            abort(400, "a JSON body with the text and a known author is required")
        note = Note(text=body["text"], author=author)
        session.add(note)
        session.flush()
        session.refresh(note)
        return jsonify(note_json(note)), 201


@app.get("/notes")
def list_notes():
    with Session(engine) as session:
        notes = session.scalars(select(Note).order_by(Note.id)).all()
        return jsonify([note_json(note) for note in notes])


@app.get("/search")
def search():
    # ?pattern=REGEX: notes whose text matches (Python's re syntax, run by
    # the host's SQLite as REGEXP).
    pattern = request.args.get("pattern", "")
    try:
        with Session(engine) as session:
            notes = session.scalars(select(Note).where(Note.text.regexp_match(pattern)).order_by(Note.id)).all()
            return jsonify([note.text for note in notes])
    except OperationalError as err:
        return jsonify(error=f"bad pattern: {err.orig}"), 400


@app.get("/authors/<name>")
def author_notes(name):
    with Session(engine) as session:
        author = session.scalar(select(Author).where(Author.name == name))
        if author is None:
            abort(404)
        return jsonify(name=author.name, notes=[note.text for note in author.notes])


@app.get("/stats")
def stats():
    # Core: an aggregate with a join, no ORM objects.
    query = (
        select(Author.name, func.count(Note.id))
        .join(Note, Note.author_id == Author.id, isouter=True)
        .group_by(Author.id)
        .order_by(Author.name)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        total = connection.execute(select(func.count()).select_from(Note)).scalar_one()
    return jsonify(notes=total, by_author={name: count for name, count in rows})
