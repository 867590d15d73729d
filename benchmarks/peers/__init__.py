"""The same networks written with other tools, to measure this project against.

* :mod:`.plain_pymc`: PyMC 6 used the obvious way (``pm.Minibatch``, ``pm.ADVI``, PyTensor's defaults).
* :mod:`.numpyro_bnn`: NumPyro's ``SVI`` with an ``AutoNormal`` guide, compiled with ``jax.jit``.
"""
