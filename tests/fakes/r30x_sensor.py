"""The fake R30x sensor lives in ``agent.simulators`` because the agent's simulated mode runs it too."""
from agent.simulators.r30x_sensor import *  # noqa: F401,F403
from agent.simulators.r30x_sensor import FakeR30xSensor, Finger, identity_template, score, similarity  # noqa: F401
