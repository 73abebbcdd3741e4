"""Figure kinds, sizes, colours and saving (matplotlib's Agg canvas, never pyplot)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from matplotlib import colormaps, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


#: Figure sizes in inches by plot kind; comparison plots ("compare-front" ...) use their kind's.
FIGSIZES: dict[str, tuple[float, float]] = {
    "front": (8.0, 6.0),
    "pairs": (9.0, 9.0),
    "parallel": (10.0, 6.0),
    "hypervolume": (8.0, 5.0),
    "progress": (8.0, 5.0),
}


FORMATS = ("png", "svg")


_FRONT_COLOR = "#e6550d"


_KNEE_COLOR = "#ffd92f"


_FEASIBLE_COLOR = "#3182bd"


# Background layers with more points than this are drawn as pixels inside the SVG, which
# keeps a 15,000-trial SVG small; the front, the knee and all text stay vectors.
_RASTER_ABOVE = 2000


# -- figures --------------------------------------------------------------------------------
@dataclass
class Plot:
    """A rendered figure; ``name`` is its file stem (``front``, ``compare-hypervolume`` ...)."""

    name: str
    caption: str
    figure: Figure

    def to_bytes(self, fmt: str = "png") -> bytes:
        buffer = io.BytesIO()
        _save(self.figure, buffer, fmt)
        return buffer.getvalue()


def pixel_size(name: str) -> tuple[int, int]:
    """Width and height in pixels of the PNG of plot ``name`` (``front``, ``compare-pairs`` ...)."""
    width, height = FIGSIZES[name.removeprefix("compare-")]
    return round(width * DPI), round(height * DPI)


def _figure(kind: str) -> Figure:
    fig = Figure(figsize=FIGSIZES[kind], dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, target: Any, fmt: str) -> None:
    if fmt == "svg":
        # A fixed salt and no date make the SVG byte-identical for the same run.
        with rc_context({"svg.hashsalt": "hwnas"}):
            fig.savefig(target, format="svg", dpi=DPI, metadata={"Date": None})
    else:
        fig.savefig(target, format="png", dpi=DPI, metadata={"Software": None})


def _run_colors(n: int) -> list[Any]:
    palette = colormaps["tab10"]
    return [palette(i % 10) for i in range(n)]
