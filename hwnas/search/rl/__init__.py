"""Neural-Architect-style reinforcement learning: an embedding, a controller, predictors.

``strategy`` is the strategy; the other modules are its parts (tokens, embedding, controller,
predictors, reward, acquisition, state), each usable and tested alone.
"""
