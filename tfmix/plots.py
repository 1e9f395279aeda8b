"""Figures: sample grids and 2-D latent projections (matplotlib, Agg)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images, rows, row_labels=None, out=None, title=None):
    """Tiles images [N, H, W, 1] into `rows` rows; saves a PNG to `out`."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    cols = int(np.ceil(n / rows))
    canvas = np.ones((rows * (h + 2), cols * (w + 2)), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = images[i, ..., 0]
    fig, ax = plt.subplots(figsize=(cols * 0.45 + 0.8, rows * 0.45 + 0.5))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([r * (h + 2) + h / 2 for r in range(rows)])
        ax.set_yticklabels(row_labels, fontsize=7)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if out:
        fig.savefig(out, dpi=120)
    plt.close(fig)
    return canvas


def project_2d(z, method="pca", seed=0):
    """2-D projection of latents: identity for 2-D, else PCA or t-SNE."""
    z = np.asarray(z)
    if z.shape[1] == 2:
        return z
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, random_state=seed, init="pca").fit_transform(z)
    if method != "pca":
        raise ValueError(f"`method` must be 'pca' or 'tsne', got {method!r}")
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(z)


def latent_scatter(z2, panels, out, title=None):
    """Side-by-side scatter plots of z2 [N, 2], one per (name, colours); a
    panel (name, colours, own_z2) plots its own points instead."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6))
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels):
        name, colours = panel[:2]
        pts = np.asarray(panel[2]) if len(panel) > 2 else z2
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=colours, cmap="tab10" if colours.max() < 10 else "tab20", s=4, alpha=0.7)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(sc, ax=ax, ticks=np.unique(colours)[:20])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def grid_clusters(num_clusters, per_cluster):
    """(clusters [N] int32, rows) of a sample grid: one row of `per_cluster`
    per cluster, or a per_cluster x per_cluster square for one component."""
    if num_clusters > 1:
        return np.repeat(np.arange(num_clusters), per_cluster).astype(np.int32), num_clusters
    return np.zeros(per_cluster * per_cluster, np.int32), per_cluster


def cluster_samples_grid(model, out, per_cluster=10, seed=0, title=None):
    """Writes a PNG of `model.generate` samples: one row of `per_cluster`
    per cluster, or a per_cluster x per_cluster square for a one-component
    model. Returns the number of images."""
    k = model.num_clusters
    clusters, rows = grid_clusters(k, per_cluster)
    labels = [f"y={c}" for c in range(k)] if k > 1 else None
    images = model.generate(clusters, seed=seed)
    image_grid(images, rows, labels, out=out, title=title)
    return len(images)
