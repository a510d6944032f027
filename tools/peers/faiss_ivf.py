#!/usr/bin/python3
"""faiss peer for tools/qvivf.c: IndexIVFFlat / IndexIVFScalarQuantizer (8 bit) / IndexIVFPQ
on the same .fvecs/.ivecs data, nlist, nprobe, pq_m and re-rank factor, printing rows in
qvivf's table format.

Run with Debian's python3-faiss (apt-get install python3-faiss libopenblas0-pthread):
    /usr/bin/python3 tools/peers/faiss_ivf.py --data DIR [--nlist 100] [--nprobe 1,4,16,64]
        [--pq-m 16] [--refine 8] [--k 10] [--runs 5]

IVF_SQ8 and IVF_PQ are wrapped in IndexRefineFlat with k_factor = refine, so, like
quiver, they re-rank refine * k candidates with exact float distances. QPS: median of
--runs runs, each repeating the batched query set for at least 0.2 s with
omp_set_num_threads(1) or (2) (QPS_1Tcpu: searches per CPU-second of the calling
thread, which runs the search when OpenMP has one thread); BLAS is held to one thread so that only faiss's OpenMP
threads count. Memory: mem_MiB is the serialized index size (codes, 8-byte ids,
centroids, refine vectors); code_MiB is ntotal * code size.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import faiss  # noqa: E402


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        sys.exit("faiss_ivf.py: %s is malformed" % path)
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def qps(index, xq, k, threads, runs):
    """Median (wall QPS, QPS per CPU-second of this thread) over runs."""
    faiss.omp_set_num_threads(threads)
    samples, cpu_samples = [], []
    for _ in range(runs):
        start = time.perf_counter()
        cpu0 = time.thread_time()
        done = 0
        while True:
            index.search(xq, k)
            done += xq.shape[0]
            elapsed = time.perf_counter() - start
            if elapsed >= 0.2:
                break
        samples.append(done / elapsed)
        cpu_samples.append(done / max(time.thread_time() - cpu0, 1e-9))
    samples.sort()
    cpu_samples.sort()
    return samples[len(samples) // 2], cpu_samples[len(cpu_samples) // 2]


def recall(ids, gt, k):
    hits = 0
    for row, truth in zip(ids, gt):
        hits += len(set(row[:k].tolist()) & set(truth[:k].tolist()))
    return hits / (ids.shape[0] * k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/siftsmall")
    ap.add_argument("--nlist", type=int, default=100)
    ap.add_argument("--nprobe", default="1,4,16,64")
    ap.add_argument("--pq-m", type=int, default=16)
    ap.add_argument("--refine", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--types", default="IVF_FLAT,IVF_SQ8,IVF_PQ")
    ap.add_argument("--header", action="store_true")
    args = ap.parse_args()

    xb = read_vecs(os.path.join(args.data, "base.fvecs"), np.float32)
    xq = read_vecs(os.path.join(args.data, "query.fvecs"), np.float32)
    gt = read_vecs(os.path.join(args.data, "gt.ivecs"), np.int32)
    n, dim = xb.shape
    if args.header:
        print("# faiss %s (%s), OpenMP over queries, BLAS 1 thread" %
              (faiss.__version__, faiss.get_compile_options()))
    mib = 1024.0 * 1024.0
    f32 = n * dim * 4.0
    for name in args.types.split(","):
        faiss.omp_set_num_threads(2)
        quantizer = faiss.IndexFlatL2(dim)
        if name == "IVF_FLAT":
            ivf = faiss.IndexIVFFlat(quantizer, dim, args.nlist, faiss.METRIC_L2)
        elif name == "IVF_SQ8":
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, args.nlist,
                                                faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
        elif name == "IVF_PQ":
            ivf = faiss.IndexIVFPQ(quantizer, dim, args.nlist, args.pq_m, 8)
        else:
            sys.exit("faiss_ivf.py: unknown type " + name)
        index = ivf
        if name != "IVF_FLAT":
            index = faiss.IndexRefineFlat(ivf)
            index.k_factor = args.refine
        start = time.perf_counter()
        index.train(xb)
        index.add(xb)
        build_s = time.perf_counter() - start
        mem = faiss.serialize_index(index).nbytes
        code = n * ivf.code_size
        for nprobe in [int(p) for p in args.nprobe.split(",")]:
            ivf.nprobe = nprobe
            faiss.omp_set_num_threads(1)
            _, ids = index.search(xq, args.k)
            r = recall(ids, gt, args.k)
            q1, cpu1 = qps(index, xq, args.k, 1, args.runs)
            q2, _ = qps(index, xq, args.k, 2, args.runs)
            print("%-8s %-16s %6d %9.4f %9.0f %9.0f %9.0f %8.2f %9.2f %9.2f %9.2f %6.1fx" %
                  ("faiss", name, nprobe, r, q1, cpu1, q2, build_s, mem / mib, code / mib,
                   f32 / mib, f32 / code))
            sys.stdout.flush()
        del index, ivf, quantizer


if __name__ == "__main__":
    main()
