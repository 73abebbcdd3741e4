"""``report.html``: one self-contained page about a run.

Sections: summary, Pareto front, a model under a budget, plots (PNG embedded as data URIs),
family tree of the front, exports, search cost, strategy events, environment and configuration.
Every text that comes from the run is escaped. The page has no JavaScript and a
Content-Security-Policy that forbids loading anything, so it shows the same offline, moved or
mailed. ``page`` assembles it (:func:`hwnas.report.page.write_report`); ``sections``,
``budget``, ``sources`` and ``exports`` write the sections, ``html`` holds the helpers.
"""
