"""Performance model of multithreaded VFIO pinning: simpy timing over model/vfio.py.

Modules: ``tables`` (published data), ``machines`` (+ machines.json), ``costs`` (what each
scheduling point costs), ``sim`` (the discrete-event runner), ``predict``, ``fit``
(+ params.json), ``report``, ``plot``, ``cli``.
"""
