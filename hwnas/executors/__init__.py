"""Where evaluations run: in-process (the runner), a process pool, or a Ray cluster.

``pipeline`` holds the two-phase job protocol every parallel executor shares, ``process`` and
``ray`` the executors, ``gate`` the device locks that keep training off a device being timed,
and ``settings`` the user's settings and the registry that picks an executor.
"""
