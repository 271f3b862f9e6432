"""Reference k-NN timings for `cargo xtask bench perf` (written and run by xtask).

usage: perf.py DIR N EF[,EF...]  -> JSON on stdout

Loads DIR/train_N.npy, DIR/synthetic_N.npy, DIR/planted_N.npy (from memscan-perf gen) and
times, with k = 1 and the thread count of OMP_NUM_THREADS: faiss IndexFlatIP (exact; the
vectors are L2-normalized, so inner-product order is L2 order), scikit-learn brute force,
faiss IndexHNSWFlat and hnswlib (M = 16, ef_construction = 100, like memscan's default) over
an efSearch sweep, with recall@1 against the exact result (ties count as hits).
"""
import json
import os
import sys
import time

import numpy as np
import faiss
import hnswlib
import sklearn
from sklearn.neighbors import NearestNeighbors

M, EF_CONSTRUCTION = 16, 100


def main():
    d, n, efs = sys.argv[1], int(sys.argv[2]), [int(e) for e in sys.argv[3].split(",")]
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    faiss.omp_set_num_threads(threads)
    xb = np.ascontiguousarray(np.load(f"{d}/train_{n}.npy"), dtype=np.float32)
    xq = np.ascontiguousarray(np.load(f"{d}/synthetic_{n}.npy"), dtype=np.float32)
    planted = np.load(f"{d}/planted_{n}.npy")
    m, dim = xq.shape
    out = {"n": n, "m": m, "d": dim, "threads": threads,
           "versions": {"faiss": faiss.__version__, "hnswlib": getattr(hnswlib, "__version__", "?"),
                        "sklearn": sklearn.__version__, "numpy": np.__version__}}

    t = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(xb)
    _, gt = flat.search(xq, 1)
    out["faiss_flat_ip"] = {"total_s": time.perf_counter() - t}
    gt = gt[:, 0]
    # True distances in float64, for tie-aware recall.
    d_true = np.linalg.norm(xq.astype(np.float64) - xb[gt].astype(np.float64), axis=1)

    def score(idx):
        idx = np.asarray(idx).reshape(-1)
        d = np.linalg.norm(xq.astype(np.float64) - xb[idx].astype(np.float64), axis=1)
        recall = float(np.mean(d <= d_true * (1 + 1e-6) + 1e-7))
        found = int(np.sum(idx[planted[:, 0]] == planted[:, 1]))
        return recall, found

    t = time.perf_counter()
    nnb = NearestNeighbors(n_neighbors=1, algorithm="brute", n_jobs=threads).fit(xb)
    _, sk = nnb.kneighbors(xq)
    out["sklearn_brute"] = {"total_s": time.perf_counter() - t, "recall_at_1": score(sk)[0]}

    t = time.perf_counter()
    fh = faiss.IndexHNSWFlat(dim, M)
    fh.hnsw.efConstruction = EF_CONSTRUCTION
    fh.add(xb)
    build = time.perf_counter() - t
    sweep = []
    for ef in efs:
        fh.hnsw.efSearch = ef
        t = time.perf_counter()
        _, I = fh.search(xq, 1)
        s = time.perf_counter() - t
        r, f = score(I)
        sweep.append({"ef_search": ef, "search_s": s, "qps": m / s, "recall_at_1": r,
                      "planted_found": f, "planted": len(planted), "total_s": build + s})
    out["faiss_hnsw"] = {"build_s": build, "sweep": sweep}

    t = time.perf_counter()
    hl = hnswlib.Index(space="l2", dim=dim)
    hl.init_index(max_elements=n, ef_construction=EF_CONSTRUCTION, M=M, random_seed=100)
    hl.set_num_threads(threads)
    hl.add_items(xb, np.arange(n), num_threads=threads)
    build = time.perf_counter() - t
    sweep = []
    for ef in efs:
        hl.set_ef(ef)
        t = time.perf_counter()
        I, _ = hl.knn_query(xq, k=1, num_threads=threads)
        s = time.perf_counter() - t
        r, f = score(I)
        sweep.append({"ef_search": ef, "search_s": s, "qps": m / s, "recall_at_1": r,
                      "planted_found": f, "planted": len(planted), "total_s": build + s})
    out["hnswlib"] = {"build_s": build, "sweep": sweep}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
