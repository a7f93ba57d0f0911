"""The REST service: Flask app factory, routes, metrics, logs and gunicorn configuration."""
