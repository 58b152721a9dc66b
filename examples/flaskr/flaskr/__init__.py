"""A small blog written the way the Flask tutorial's flaskr is: an app
factory, the standard library's ``sqlite3`` on a file in the instance
folder, ``flask init-db`` to create the schema. Nothing in it knows about
wasmhost: under ``wasmhost serve`` the file is the app's host database,
persistent and shared by every instance (see README.md)."""

import os

from flask import Flask


def create_app(test_config=None):
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.update(test_config)
    try:
        os.makedirs(app.instance_path)
    except OSError:
        pass

    from . import blog, db

    db.init_app(app)
    app.register_blueprint(blog.bp)
    app.add_url_rule("/", endpoint="index")
    return app
