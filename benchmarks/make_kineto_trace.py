"""Stream a LARGE Kineto-schema trace to disk, for the speed and memory benchmarks.

    python benchmarks/make_kineto_trace.py --mb 500 -o /tmp/big.trace.json
    python benchmarks/make_kineto_trace.py --mb 50 -o /tmp/big.trace.json.gz --truth /tmp/big.truth.json

Same schema as fixtures/kineto_synth.py (torch >= 2.4 Kineto: baseTimeNanoseconds
floored to a 3-month bucket, ts/dur as µs with exactly three decimals relative to it,
pretty-printed one key per line), but written step by step without holding the trace
in memory: only one step's events are buffered at a time.  The mix follows a
CUDA-graph serving trace: mostly decode steps (one cudaGraphLaunch -> 40 kernels on
one correlation id), an eager prefill step every 8 steps (cpu_op -> cudaLaunchKernel
-> kernel, NCCL all-reduce on a second stream), python_function frames (with_stack),
memory instants, ac2g flows, and scheduler work between steps whose GPU ops are
outside any step.

``--truth`` writes totals computed while generating (events by ph/cat, steps by mode,
GPU op counts and time in ns, attributed vs unattributed), so a benchmark can check
its answers as well as its speed.  Stdlib only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

THREE_MONTHS_NS = 7_889_238 * 1_000_000_000
START_NS = 1_769_071_195_663_459_500

K_GEMM = ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
          "_execute_segment_k_off_kernel__5x_cublas")
K_RMS = ("void flashinfer::norm::FusedAddRMSNormKernel<8u, __nv_bfloat16>(__nv_bfloat16*, "
         "__nv_bfloat16*, __nv_bfloat16*, unsigned int, unsigned int, unsigned int, float, float)")
K_FLASH = ("void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
           "cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, "
           "false, true, false, false, false, true, false, false>(flash::Flash_fwd_params)")
K_ADD = ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add"
         "<c10::BFloat16>, std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add"
         "<c10::BFloat16>, std::array<char*, 3ul>)")
K_SILU = ("void flashinfer::activation::act_and_mul_kernel<__nv_bfloat16, &silu>(__nv_bfloat16*, "
          "__nv_bfloat16 const*, int)")
K_DEC = ("void flashinfer::BatchDecodeWithPagedKVCacheKernel<(flashinfer::PosEncodingMode)0, 2u, "
         "2u, 8u, 16u, 1u, 8u, flashinfer::DefaultAttention<false, false, false, false>, "
         "flashinfer::BatchDecodeParams<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, int> >"
         "(flashinfer::BatchDecodeParams<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, int>)")
K_AR = ("void sglang::cross_device_reduce_1stage<__nv_bfloat16, 2>(sglang::RankData*, "
        "sglang::RankSignals, sglang::Signal*, __nv_bfloat16*, int, int)")
K_NCCL = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
K_ARGMAX = ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
            "at::native::ArgMaxOps<float>, unsigned int, long, 4> >(at::native::ReduceOp<float, "
            "at::native::ArgMaxOps<float>, unsigned int, long, 4>)")
GRAPH_CYCLE = [K_RMS, K_GEMM, K_DEC, K_GEMM, K_AR, K_RMS, K_GEMM, K_SILU, K_GEMM, K_ADD]
EAGER_LAYER = [("sgl_kernel::fused_add_rmsnorm", K_RMS, 3_000, 7), ("aten::mm", K_GEMM, 25_000, 7),
               ("sgl_kernel::fwd", K_FLASH, 60_000, 7), ("aten::mm", K_GEMM, 12_000, 7),
               ("c10d::allreduce_", K_NCCL, 30_000, 20), ("sgl_kernel::fused_add_rmsnorm", K_RMS, 3_000, 7),
               ("aten::mm", K_GEMM, 40_000, 7), ("sgl_kernel::silu_and_mul", K_SILU, 5_000, 7),
               ("aten::mm", K_GEMM, 40_000, 7), ("aten::add", K_ADD, 3_000, 7)]

# --- templates (torch 2.x Kineto layout: one key per line) -------------------
T_X = ('  {\n    "ph": "X",\n    "cat": "%s",\n    "name": "%s",\n    "pid": %d,\n    "tid": %d,\n'
       '    "ts": %d.%03d,\n    "dur": %d.%03d\n    ,\n    "args": {\n      %s\n    }\n  },\n')
T_S = ('  {\n    "ph": "s",\n    "id": %d,\n    "pid": %d,\n    "tid": %d,\n    "ts": %d.%03d,\n'
       '    "cat": "ac2g",\n    "name": "ac2g"\n  },\n')
T_F = ('  {\n    "ph": "f",\n    "id": %d,\n    "pid": %d,\n    "tid": %d,\n    "ts": %d.%03d,\n'
       '    "cat": "ac2g",\n    "name": "ac2g",\n    "bp": "e"\n  },\n')
T_I = ('  {\n    "ph": "i",\n    "cat": "cpu_instant_event",\n    "s": "t",\n    "name": "[memory]",\n'
       '    "pid": %d,\n    "tid": %d,\n    "ts": %d.%03d\n    ,\n    "args": {\n'
       '      "Total Reserved": 4294967296, "Total Allocated": %d, "Bytes": %d, "Addr": %d, '
       '"Device Id": %d, "Device Type": 1\n    }\n  },\n')
A_KERNEL = ('"External id": %d, "queued": 0, "device": %d, "context": 1, "stream": %d, '
            '"correlation": %d, "registers per thread": 32, "shared memory": 0, '
            '"blocks per SM": 1.0, "warps per SM": 8.0, "grid": [132, 1, 1], '
            '"block": [256, 1, 1], "est. achieved occupancy %%": 25')
A_MEMCPY = ('"External id": %d, "device": %d, "context": 1, "stream": %d, "correlation": %d, '
            '"bytes": %d, "memory bandwidth (GB/s)": 1.5')


class Gen:
    def __init__(self, seed: int, rank: int, world_size: int):
        self.rng = random.Random(f"big:{seed}:{rank}")
        self.rank, self.world = rank, world_size
        self.dev = rank % 8
        self.pid = 3000 + self.rng.randrange(400_000)
        self.tid = self.pid
        self.base = (START_NS // THREE_MONTHS_NS) * THREE_MONTHS_NS
        self.t = START_NS - self.base  # relative ns
        self.free = {7: 0, 20: 0}
        self.corr = 53
        self.ext = 1
        self.py = 1
        self.alloc = 2_147_483_648
        # a pool of pre-drawn jitter values: random.randint per event is the hot spot
        self.jit = [self.rng.randrange(0, 4_000) for _ in range(4099)]
        self.ji = 0
        # truth counters
        self.n_events = 0
        self.by_ph = {"X": 0, "s": 0, "f": 0, "i": 0, "M": 0}
        self.by_cat: dict[str, int] = {}
        self.steps_by_mode: dict[str, int] = {}
        self.gpu_ops = 0
        self.kernels = 0
        self.gpu_time = 0
        self.kernel_time = 0
        self.gpu_time_attr = 0
        self.gpu_time_unattr = 0
        self.in_step = False

    def j(self) -> int:
        self.ji = (self.ji + 1) % 4099
        return self.jit[self.ji]

    def _count(self, ph: str, cat: str | None, n: int = 1):
        self.n_events += n
        self.by_ph[ph] += n
        if cat:
            self.by_cat[cat] = self.by_cat.get(cat, 0) + n

    # each helper appends rendered text to `out` and returns the end time
    def x(self, out, cat, name, start, dur, args, pid=None, tid=None):
        out.append(T_X % (cat, name, pid if pid is not None else self.pid,
                          tid if tid is not None else self.tid,
                          start // 1000, start % 1000, dur // 1000, dur % 1000, args))
        self._count("X", cat)

    def launch(self, out, gpu_out, api, ext, specs, cbid):
        """runtime call at self.t on the main thread, GPU ops per specs."""
        t0 = self.t + 600 + self.j() // 2
        dur = (16_000 if cbid == 311 else 3_000) + self.j()
        corr = self.corr
        self.corr += 1
        self.x(out, "cuda_runtime", api, t0, dur,
               '"External id": %d, "cbid": %d, "correlation": %d' % (ext, cbid, corr))
        out.append(T_S % (corr, self.pid, self.tid, t0 // 1000, t0 % 1000))
        self._count("s", "ac2g")
        self.t = t0 + dur
        prev_end = None
        for cat, name, stream, gdur, nbytes in specs:
            earliest = t0 + 5_000 if prev_end is None else prev_end + 400 + self.j() // 4
            s = max(earliest, self.free[stream])
            if stream == 20:  # NCCL waits for the producer; compute waits for NCCL
                s = max(s, self.free[7])
            else:
                s = max(s, self.free[20])
            gdur += self.j()
            e = s + gdur
            self.free[stream] = max(self.free[stream], e)
            prev_end = e
            if cat == "kernel":
                args = A_KERNEL % (ext, self.dev, stream, corr)
                self.kernels += 1
                self.kernel_time += gdur
            else:
                args = A_MEMCPY % (ext, self.dev, stream, corr, nbytes)
            self.x(gpu_out, cat, name, s, gdur, args, pid=self.dev, tid=stream)
            gpu_out.append(T_F % (corr, self.dev, stream, s // 1000, s % 1000))
            self._count("f", "ac2g")
            self.gpu_ops += 1
            self.gpu_time += gdur
            if self.in_step:
                self.gpu_time_attr += gdur
            else:
                self.gpu_time_unattr += gdur

    def op(self, out, gpu_out, name, kname, kdur, stream, ext_parent=None):
        """cpu_op wrapping one cudaLaunchKernel; python frame around it."""
        p0 = self.t + 300
        self.t = p0 + 800
        ext = self.ext
        self.ext += 1
        body: list[str] = []
        gbody: list[str] = []
        o0 = self.t
        self.launch(body, gbody, "cudaLaunchKernel", ext,
                    [("kernel", kname, stream, kdur, 0)], 211)
        self.t += 1_000 + self.j() // 4
        self.x(out, "python_function", "sglang/srt/layers/linear.py(487): forward", p0,
               self.t + 500 - p0, '"Python parent id": %d, "Python id": %d, "Python thread": 0'
               % (self.py - 1 if self.py > 1 else 0, self.py))
        self.py += 1
        self.x(out, "cpu_op", name, o0, self.t - o0,
               '"External id": %d, "Record function id": 0, "Ev Idx": %d' % (ext, ext - 1))
        out.extend(body)
        gpu_out.extend(gbody)
        self.t += 500

    def memcpy(self, out, gpu_out, kind, nbytes):
        o0 = self.t + 400
        self.t = o0 + 500
        ext = self.ext
        self.ext += 1
        body: list[str] = []
        self.launch(body, gpu_out, "cudaMemcpyAsync", ext,
                    [("gpu_memcpy", kind, 7, 1_500 + nbytes // 20, nbytes)], 41)
        self.t += 800
        self.x(out, "cpu_op", "aten::copy_", o0, self.t - o0,
               '"External id": %d, "Record function id": 0, "Ev Idx": %d' % (ext, ext - 1))
        out.extend(body)

    def instant(self, out, nbytes):
        self.alloc += nbytes
        out.append(T_I % (self.pid, self.tid, self.t // 1000, self.t % 1000, self.alloc, nbytes,
                          140_000_000_000_000 + self.ext * 512, self.dev))
        self._count("i", "cpu_instant_event")

    def step(self, index: int) -> str:
        out: list[str] = []
        gpu: list[str] = []
        # scheduler work between steps: outside any step (unattributed GPU ops)
        self.in_step = False
        self.t += 20_000 + self.j() * 4
        self.memcpy(out, gpu, "Memcpy DtoH (Device -> Pinned)", 512)
        self.t = max(self.t, max(self.free.values()) + 2_000)  # stream sync
        self.instant(out, -4096)
        prefill = index % 8 == 0
        bs = 2 + index % 7
        label = (f"step[EXTEND bs={bs} toks={bs * 128}]" if prefill else f"step[DECODE bs={bs * 8}]")
        mode = "prefill" if prefill else "decode"
        self.steps_by_mode[mode] = self.steps_by_mode.get(mode, 0) + 1
        s0 = self.t + 2_000
        self.t = s0 + 1_000
        sext = self.ext
        self.ext += 1
        body: list[str] = []
        self.in_step = True
        self.memcpy(body, gpu, "Memcpy HtoD (Pinned -> Device)", 4096)
        self.instant(body, 8192 * bs)
        if prefill:
            for _layer in range(4):
                for name, k, d, stream in EAGER_LAYER:
                    if stream == 20 and self.world == 1:
                        continue
                    self.op(body, gpu, name, k, d * bs // 2, stream)
        else:
            g0 = self.t + 500
            self.t = g0 + 1_200
            specs = [("kernel", GRAPH_CYCLE[i % 10], 7, 2_000 + (i % 5) * 2_000, 0)
                     for i in range(40)]
            inner: list[str] = []
            self.launch(inner, gpu, "cudaGraphLaunch", sext, specs, 311)
            self.t += 1_500
            self.x(body, "python_function", "torch/cuda/graphs.py(129): replay", g0,
                   self.t - g0, '"Python parent id": 0, "Python id": %d, "Python thread": 0'
                   % self.py)
            self.py += 1
            body.extend(inner)
        self.op(body, gpu, "aten::argmax", K_ARGMAX, 4_000, 7)
        self.t += 2_000 + self.j() // 2
        self.in_step = False
        self.x(out, "user_annotation", label, s0, self.t - s0,
               '"External id": %d, "Record function id": 0, "Ev Idx": %d' % (sext, sext - 1))
        out.extend(body)
        out.extend(gpu)
        return "".join(out)

    def header(self) -> str:
        dist = ""
        if self.world > 1:
            dist = ('  "distributedInfo": {"backend": "nccl", "rank": %d, "world_size": %d, '
                    '"pg_count": 1, "nccl_version": "2.27.3"},\n' % (self.rank, self.world))
        meta = []
        t = self.t
        for pid, tid, name, arg in [
            (self.pid, 0, "process_name", '"name": "python"'),
            (self.pid, 0, "process_labels", '"labels": "CPU"'),
            (self.pid, self.tid, "thread_name", '"name": "thread %d (python)"' % self.tid),
            (self.dev, 0, "process_name", '"name": "python"'),
            (self.dev, 0, "process_labels", '"labels": "GPU %d"' % self.dev),
            (self.dev, 7, "thread_name", '"name": "stream 7 "'),
            (self.dev, 20, "thread_name", '"name": "stream 20 "'),
        ]:
            meta.append('  {\n    "ph": "M",\n    "name": "%s",\n    "ts": %d.%03d,\n'
                        '    "pid": %d,\n    "tid": %d\n    ,\n    "args": {\n      %s\n    }\n  },\n'
                        % (name, t // 1000, t % 1000, pid, tid, arg))
            self._count("M", None)
        return ('{\n  "schemaVersion": 1,\n  "deviceProperties": [\n    {\n      "id": %d, '
                '"name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 84929347584, '
                '"computeMajor": 9, "computeMinor": 0, "numSms": 132\n    }\n  ],\n'
                '  "cupti_version": 24,\n  "cuda_runtime_version": 12080,\n%s'
                '  "record_shapes": 1,\n  "with_stack": 1,\n  "profile_memory": 1,\n'
                '  "displayTimeUnit": "ms",\n  "baseTimeNanoseconds": %d,\n  "traceEvents": [\n'
                % (self.dev, dist, self.base)) + "".join(meta)

    def footer(self) -> str:
        t = self.t + 10_000
        self._count("i", None)
        return ('  {\n    "ph": "i",\n    "s": "g",\n    "name": "Record Window End",\n'
                '    "pid": "",\n    "tid": "",\n    "ts": %d.%03d\n  }\n  ],'
                '"traceName": "big.trace.json"\n}\n' % (t // 1000, t % 1000))


def generate(path: Path, target_bytes: int, *, seed: int = 0, rank: int = 0,
             world_size: int = 2) -> dict:
    g = Gen(seed, rank, world_size)
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if path.name.endswith(".gz") \
        else (lambda p: open(p, "wb", buffering=1 << 22))
    written = 0
    n = 0
    t0 = time.perf_counter()
    with opener(path) as fh:
        chunk = g.header().encode()
        fh.write(chunk)
        written += len(chunk)
        batch: list[str] = []
        batch_len = 0
        while written + batch_len < target_bytes:
            s = g.step(n)
            n += 1
            batch.append(s)
            batch_len += len(s)
            if batch_len > 1 << 22:
                data = "".join(batch).encode()
                fh.write(data)
                written += len(data)
                batch, batch_len = [], 0
        if batch:
            data = "".join(batch).encode()
            fh.write(data)
            written += len(data)
        tail = g.footer().encode()
        fh.write(tail)
        written += len(tail)
    elapsed = time.perf_counter() - t0
    return {
        "path": str(path),
        "bytes_uncompressed": written,
        "seconds": round(elapsed, 3),
        "mb_per_s": round(written / 1e6 / elapsed, 1),
        "base_time_ns": g.base,
        "n_steps": n,
        "steps_by_mode": g.steps_by_mode,
        "n_events": g.n_events,
        "by_ph": g.by_ph,
        "by_cat": g.by_cat,
        "n_gpu_ops": g.gpu_ops,
        "n_kernels": g.kernels,
        "gpu_op_time_ns": g.gpu_time,
        "kernel_time_ns": g.kernel_time,
        "gpu_op_time_in_steps_ns": g.gpu_time_attr,
        "gpu_op_time_unattributed_ns": g.gpu_time_unattr,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=500.0, help="target uncompressed size in MB")
    ap.add_argument("-o", "--out", type=Path, default=Path("/tmp/big.trace.json"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--truth", type=Path, help="write generation totals (JSON) here")
    args = ap.parse_args(argv)
    info = generate(args.out, int(args.mb * 1e6), seed=args.seed, rank=args.rank,
                    world_size=args.world_size)
    if args.truth:
        args.truth.write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {info['bytes_uncompressed'] / 1e6:.1f} MB ({info['n_events']} events, "
          f"{info['n_steps']} steps) to {args.out} in {info['seconds']} s "
          f"= {info['mb_per_s']} MB/s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
