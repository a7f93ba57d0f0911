"""The physics-based ``ballistic`` profile: configuration, atmosphere, flight, sensing.

:mod:`.simulator` assembles the parts into observation and track frames
(:func:`~missile_classifier.simulation.ballistic.simulator.simulate_ballistic`).
"""
