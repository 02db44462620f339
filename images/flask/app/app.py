"""A native Flask app, the sample that sconify converts (lift and shift, unchanged code)."""

import os
from pathlib import Path

from flask import Flask

# A value that exists only in this protected directory; the tests check that no blob of the
# converted image contains it.
SECRET_MARKER = "sconify-sample-secret-3f9c2a7e51d04b68"

app = Flask(__name__)
HERE = Path(__file__).resolve().parent


@app.get("/")
def index() -> str:
    greeting = (HERE / "data" / "greeting.txt").read_text().strip()
    return f"{greeting} (uid {os.getuid()}, cwd {os.getcwd()})\n"


@app.get("/secret-len")
def secret_len() -> str:
    return f"{len(SECRET_MARKER)}\n"


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8080")))
