"""Weight-sharing supernet search (FBNet, SqueezeNAS, DARTS, SNAS) for the ``mobilenet`` space.

One supernet holds every candidate block of every layer (:mod:`.network`); architecture logits
theta weight them through a relaxation (:mod:`.relax`); the expected hardware cost under those
weights is differentiable (:mod:`.costs`, from the device's latency table, MACs, parameters,
peak memory); the methods differ in the architecture loss (:mod:`.losses`). :mod:`.trainer`
trains weights and theta alternately with checkpoints; :mod:`.strategies` plugs it into the
ask/tell runner and turns the learned distributions into a front of candidates.
:mod:`.cell` is the weight-sharing network of the ``nb201`` cell space; :mod:`.enas` the ENAS
strategy (an LSTM controller over shared weights, trained by :mod:`.enas_trainer`).
"""
