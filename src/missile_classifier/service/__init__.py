"""The REST service: Flask app factory, routes, track store, metrics, logs and gunicorn config.

Runs in the serving image, which has no torch, pandas, scikit-learn, matplotlib or pyarrow: it
scores through :mod:`missile_classifier.scoring` and never imports training or simulation code
(``make lint`` checks it, imports inside functions included).
"""
