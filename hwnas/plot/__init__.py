"""Plots of one run or several: the Pareto front, a pairwise scatter matrix, parallel
coordinates and hypervolume over evaluations, written as PNG and SVG into the run's ``plots/``.

matplotlib's object-oriented API on the Agg canvas, never pyplot: no display is ever needed and
no process-wide state (backend, figure registry) changes. Figures have a fixed size in inches
and a fixed DPI, so every file of one kind has the same pixel size (see
:func:`hwnas.plot.style.pixel_size`).

``data`` reads runs and computes what is drawn, ``style`` holds figure sizes and files, ``axes``
robust limits and readable ticks, ``fronts`` and ``panels`` the figures, ``render`` the entry
points (:func:`hwnas.plot.render.plot_runs`).
"""
