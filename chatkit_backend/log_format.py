"""The one JSON log format, shared by the app (request_log.py) and gunicorn.conf.py.

Standard library only: gunicorn's master loads this file by path, without importing the package (and Flask).
"""

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAME_FIELDS = {"levelname": "level", "name": "logger", "asctime": "time"}
# The same formatter as a logging.config "formatters" entry (gunicorn's logconfig_dict).
JSON_FORMATTER = {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": FORMAT, "rename_fields": RENAME_FIELDS}
