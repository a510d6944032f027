#!/bin/sh
#  Prepares Fashion-MNIST for tools/qvann: installs Debian's dataset-fashion-mnist,
#  converts its idx files to .fvecs (60000 train images as base, the first NQ test
#  images as queries, 784 float32 pixels 0..255) and computes the exact L2 top-100 as
#  .ivecs. Writes into OUT (default build/data/fashion-mnist); never commit the output.
#
#  tools/fashion_mnist.sh [OUT] [NQ]
set -eu
OUT=${1:-build/data/fashion-mnist}
NQ=${2:-1000}
SRC=/usr/share/datasets/fashion-mnist
if [ ! -f "$SRC/train-images-idx3-ubyte.gz" ]; then
    apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; }
fi
if ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
    apt-get install -y python3-numpy || { apt-get update && apt-get install -y python3-numpy; }
fi
mkdir -p "$OUT"
/usr/bin/python3 - "$SRC" "$OUT" "$NQ" <<'PY'
import gzip, struct, sys
import numpy as np

src, out, nq = sys.argv[1], sys.argv[2], int(sys.argv[3])

def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051 or len(data) != 16 + n * rows * cols:
        raise SystemExit("%s: not an idx3 image file" % path)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)

def write_vecs(path, arr, dtype):
    arr = np.ascontiguousarray(arr, dtype=dtype)
    n, d = arr.shape
    rec = np.empty((n, d + 1), dtype=np.int32)
    rec[:, 0] = d
    rec[:, 1:] = arr.view(np.int32)
    rec.tofile(path)

base = read_idx_images(src + "/train-images-idx3-ubyte.gz").astype(np.float64)
queries = read_idx_images(src + "/t10k-images-idx3-ubyte.gz")[:nq].astype(np.float64)
write_vecs(out + "/base.fvecs", base.astype(np.float32), np.float32)
write_vecs(out + "/query.fvecs", queries.astype(np.float32), np.float32)

# Exact squared L2 in float64 (pixel values are integers: distances are exact);
# ties broken by the smaller id (stable sort), as Quiver's FLAT index does.
bn = (base * base).sum(axis=1)
gt = np.empty((len(queries), 100), dtype=np.int32)
for s in range(0, len(queries), 100):
    q = queries[s:s + 100]
    d = bn[None, :] - 2.0 * q @ base.T + (q * q).sum(axis=1)[:, None]
    gt[s:s + 100] = np.argsort(d, axis=1, kind="stable")[:, :100]
write_vecs(out + "/gt.ivecs", gt, np.int32)
print("fashion-mnist: %d base, %d queries, 784 dims, exact top-100 -> %s" % (len(base), len(queries), out))
PY
