"""Training: data preparation, the LSTM and its baselines, metrics, report and ONNX export.

Needs the ``train`` extra (torch, pandas, scikit-learn, matplotlib). Scores through
:mod:`missile_classifier.scoring`, like the service; never imports the service.
"""
