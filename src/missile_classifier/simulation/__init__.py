"""Track data: the ``challenge`` and ``ballistic`` simulator profiles and dataset writing.

Training-side code (pandas, pyarrow). It never imports :mod:`missile_classifier.scoring`,
:mod:`missile_classifier.training` or :mod:`missile_classifier.service`, so the simulator cannot
learn from the model it is meant to test (``make lint`` checks it).
"""
