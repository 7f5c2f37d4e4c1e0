"""Speedup against threads per cache size, published (solid) vs predicted (dashed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.perf.report import TableResult

CACHE_COLORS = {0: "tab:red", 32768: "tab:orange", 65536: "tab:green", 131072: "tab:blue"}


def plot_tables(results: list[TableResult], path: str) -> None:
    """One panel per published table; writes a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, tr in zip(axes.flat, results, strict=False):
        t = tr.table
        for cache, color in CACHE_COLORS.items():
            rs = sorted((r for r in tr.rows if r.row.cache_pages == cache),
                        key=lambda r: r.row.threads)
            xs = [r.row.threads for r in rs]
            ax.plot(xs, [r.row.pin_speedup for r in rs], "-o", color=color, ms=3,
                    label=f"cache {cache} published")
            ax.plot(xs, [r.pred.speedup for r in rs], "--x", color=color, ms=4,
                    label=f"cache {cache} predicted")
        ax.set_title(f"{t.backing} qthr={t.qthr} {t.mem_gib}G", fontsize=9)
        ax.set_xticks([1, 8, 16, 24, 32])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(results):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("pin speedup", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("padata threads", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("intel-skylake-8167m: published (solid) vs predicted (dashed) pin speedup")
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
