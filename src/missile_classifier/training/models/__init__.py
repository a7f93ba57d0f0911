"""The models compared in training: the LSTM and the baselines it has to beat."""
