"""Small multiples of the random-intercept picture: strips on one estimate axis.

GridLayout's canvas, title, legend, x label, caption and cells, with a
render.strip.StripPanel in each cell: the shared window on the estimate axis, each
panel's own clusters as its rows (their labels, or a few sizes, beside every cell:
the panels' clusters differ), the strip's legend on one line.
"""

from __future__ import annotations

from shrinkcli.render.grid import GridLayout
from shrinkcli.render.strip import StripPanel, strip_legend

TICK_SIZE = 7.5  # the estimate's tick labels, as the planes' in a grid


class StripGridLayout(GridLayout):
    """GridLayout of StripPictures; ``limits`` is the shared (lo, hi) of the estimate."""

    def _make_panels(self, tracks: list) -> list:
        return [StripPanel(self.canvas, pic, self.settings, limits=self.limits)
                for pic in self.pictures]  # fmt: skip

    def _common_sizes(self) -> None:
        self.unbalanced = []  # the rows say the sizes; every point is the same size

    def _legend_items(self) -> tuple[list, list[str]]:
        st = self.settings
        return strip_legend(
            no_ols=any(bool((~p.has_ols).any()) for p in self.pictures),
            truth=st.truth and all(p.truth is not None for p in self.pictures),
            beyond=any(m.any() for p in self.panels for m in p.beyond.values()),
            band=st.ellipses,
            one_line=True,
        )

    def _margins(self, height: float) -> tuple[float, float]:
        """Every cell keeps room for the widest panel's row labels."""
        cv = self.canvas
        left = 0.3 * cv.width
        widest = 0.0
        for panel in self.panels:
            panel.style(height, TICK_SIZE)
            cv.place(panel.ax, left, 0.3 * cv.height, 0.6 * cv.width, 0.3 * cv.height + height)
            widest = max(widest, panel.row_label_width(left))
        return 0.0, widest + (4 * cv.scale if widest else 0.0)

    def _style_cell(self, panel, *, first: bool) -> None:
        x0, y0, _, y1 = self.canvas.box(panel.ax)
        panel.style(y1 - y0, TICK_SIZE)
