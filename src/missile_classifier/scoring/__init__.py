"""Everything that turns observations into reentry probabilities with a trained bundle.

Used by the service, by ``predict`` and by training, so all three score with the same code.
NumPy, pymap3d and onnxruntime only: never torch, pandas, scikit-learn, matplotlib or pyarrow,
so the serving image stays small (``make lint`` checks it, imports inside functions included).
"""
