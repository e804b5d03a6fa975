"""Timeline PNG: per validation position, when the reported score took it and when it was trained on."""

from __future__ import annotations

from pathlib import Path

from harness.trace.timeline import Timeline


def plot_timeline(tl: Timeline, path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    other = {p: e for p, e in tl.first_scored.items() if tl.reported_score.get(p) != e}
    for data, color, label, marker in (
            (other, "0.6", "scored (not reported)", "."),
            (tl.reported_score, "tab:blue", "scored (reported)", "."),
            (tl.first_trained, "tab:red", "first trained", "x")):
        if data:
            pos = sorted(data)
            ax.scatter([data[p] for p in pos], pos, s=6, c=color, marker=marker, label=label)
    bad = set(tl.trained_before_reported())
    if bad:
        pos = sorted(bad)
        ax.scatter([tl.reported_score[p] for p in pos], pos, s=18, facecolors="none", edgecolors="black",
                   label="violation")
    ax.set_xlabel("event index (run order)")
    ax.set_ylabel("validation position")
    ax.set_title(title or "score vs train order")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
