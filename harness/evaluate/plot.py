"""PNG of per-chunk BPB for a TTT run (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path


def plot_chunks(chunks: list[dict[str, float]], path: Path, title: str = "score-first TTT",
                baseline_bpb: float | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [c["chunk"] for c in chunks]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    ax.plot(xs, [c["bpb"] for c in chunks], lw=0.8, alpha=0.6, label="chunk BPB")
    ax.plot(xs, [c["running_bpb"] for c in chunks], lw=1.6, label="running BPB")
    if baseline_bpb is not None:
        ax.axhline(baseline_bpb, color="grey", ls="--", lw=1, label="no-TTT sliding BPB")
    ax.set_xlabel("chunk (scored, then trained on; the last is never trained)")
    ax.set_ylabel("bits per byte")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
