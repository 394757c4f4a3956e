"""WSGI entry point for gunicorn: `gunicorn wsgi:app`. Loads `.env` before reading the configuration."""

import sys

from dotenv import find_dotenv, load_dotenv

from chatkit_backend import create_app
from chatkit_backend.config import ConfigError

load_dotenv(find_dotenv(usecwd=True))  # the .env of the folder the service starts in

try:
    app = create_app()
except ConfigError as error:
    print(error, file=sys.stderr)
    sys.exit(3)  # gunicorn treats a worker that exits with 3 at boot as fatal and stops
