#!/usr/bin/env python3
"""PyTorch-eager reference for `tenmin bench sample`: the SDXL U-Net run the way an eager PyTorch pipeline
runs it (nn.Module, bf16 weights and activations, F.scaled_dot_product_attention, no torch.compile), timed
for a whole image: `--steps` calls at batch 2 (classifier-free guidance) on 1024x1024 latents.

The network is written here from the sgm architecture tenmin implements (docs: tenmin.models.sdxl.Unet;
trainer-spec section 4.3), with sgm's module and key names, so `--check FIXTURE_DIR` can load a fixture
checkpoint (models/<name>/checkpoint.safetensors + config.json) and compare its output with unet-io.safetensors
(the sgm reference) before trusting the timings. Needs only torch (no numpy, no diffusers).

  python3 scripts/bench_unet_torch.py --device cuda --dtype bf16 --width 1024 --height 1024 --steps 30 --runs 3
  python3 scripts/bench_unet_torch.py --check ../shared/fixtures/models/tiny-a          # correctness, CPU fp32
  python3 scripts/bench_unet_torch.py --host       # host cost: tiny ops, aten ops and issue time per U-Net call
"""
import argparse
import json
import math
import statistics
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SDXL = dict(in_channels=4, out_channels=4, model_channels=320, channel_mult=[1, 2, 4], num_res_blocks=2,
            attention_resolutions=[4, 2], transformer_depth=[0, 2, 10], transformer_depth_middle=10,
            num_head_channels=64, context_dim=2048, adm_in_channels=2816)


def timestep_embedding(t, dim):
    """cos-first sinusoid, f_k = exp(-ln(10000) k / half) (sgm timestep_embedding, no shift)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in fp32 (sgm GroupNorm32, and what autocast does), used in ResBlocks and the output head."""

    def forward(self, x):
        return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps).type(x.dtype)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(32, cin, eps=1e-5), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(GroupNorm32(32, cout, eps=1e-5), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb, context):
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class CrossAttention(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x, context=None):
        kv = x if context is None else context
        n, tq, c = x.shape
        q, k, v = self.to_q(x), self.to_k(kv), self.to_v(kv)
        q, k, v = (t.reshape(n, -1, self.heads, c // self.heads).transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(o.transpose(1, 2).reshape(n, tq, c))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, x):
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, context_dim):
        super().__init__()
        self.attn1 = CrossAttention(dim, dim, heads)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    def __init__(self, channels, heads, depth, context_dim):
        super().__init__()
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(channels, heads, context_dim) for _ in range(depth)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x, emb, context):
        n, c, h, w = x.shape
        t = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c))
        for b in self.transformer_blocks:
            t = b(t, context)
        return self.proj_out(t).reshape(n, h, w, c).permute(0, 3, 1, 2) + x


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x, emb, context):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, emb, context):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Block(nn.ModuleList):
    """sgm TimestepEmbedSequential: layers that take (x, emb, context); the stem conv takes x only."""

    def forward(self, x, emb, context):
        for layer in self:
            x = layer(x) if isinstance(layer, nn.Conv2d) else layer(x, emb, context)
        return x


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c0 = cfg["model_channels"]
        emb = 4 * c0
        self.c0 = c0
        self.time_embed = nn.Sequential(nn.Linear(c0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label_emb = nn.Sequential(nn.Sequential(nn.Linear(cfg["adm_in_channels"], emb), nn.SiLU(), nn.Linear(emb, emb)))
        mult, depth = cfg["channel_mult"], cfg["transformer_depth"]
        heads = lambda ch: ch // cfg["num_head_channels"]
        attn = lambda level: (2 ** level) in cfg["attention_resolutions"] and depth[level] > 0
        ctx = cfg["context_dim"]
        self.input_blocks = nn.ModuleList([Block([nn.Conv2d(cfg["in_channels"], c0, 3, padding=1)])])
        skips, ch = [c0], c0
        for level, m in enumerate(mult):
            for _ in range(cfg["num_res_blocks"]):
                layers = [ResBlock(ch, c0 * m, emb)]
                ch = c0 * m
                if attn(level):
                    layers.append(SpatialTransformer(ch, heads(ch), depth[level], ctx))
                self.input_blocks.append(Block(layers))
                skips.append(ch)
            if level != len(mult) - 1:
                self.input_blocks.append(Block([Downsample(ch)]))
                skips.append(ch)
        self.middle_block = Block([ResBlock(ch, ch, emb),
                                   SpatialTransformer(ch, heads(ch), cfg["transformer_depth_middle"], ctx),
                                   ResBlock(ch, ch, emb)])
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(mult))):
            for r in range(cfg["num_res_blocks"] + 1):
                layers = [ResBlock(ch + skips.pop(), c0 * mult[level], emb)]
                ch = c0 * mult[level]
                if attn(level):
                    layers.append(SpatialTransformer(ch, heads(ch), depth[level], ctx))
                if level > 0 and r == cfg["num_res_blocks"]:
                    layers.append(Upsample(ch))
                self.output_blocks.append(Block(layers))
        self.out = nn.Sequential(GroupNorm32(32, ch, eps=1e-5), nn.SiLU(), nn.Conv2d(ch, cfg["out_channels"], 3, padding=1))

    def forward(self, x, t, context, y):
        dtype = self.out[2].weight.dtype
        emb = self.time_embed(timestep_embedding(t, self.c0).to(dtype)) + self.label_emb(y.to(dtype))
        h, hs = x.to(dtype), []
        context = context.to(dtype)
        for b in self.input_blocks:
            h = b(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for b in self.output_blocks:
            h = b(torch.cat([h, hs.pop()], dim=1), emb, context)
        return self.out(h).float()


def read_safetensors(path, prefix=""):
    """Tensors of a safetensors file whose names start with prefix (prefix removed), as fp32/int64 CPU tensors."""
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or not name.startswith(prefix):
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name[len(prefix):]] = t.float() if t.is_floating_point() else t
    return out


def check(fixture_dir):
    cfg = json.load(open(f"{fixture_dir}/config.json"))["unet"]
    model = UNet(cfg).eval()
    missing, unexpected = model.load_state_dict(
        read_safetensors(f"{fixture_dir}/checkpoint.safetensors", "model.diffusion_model."), strict=True)
    io = read_safetensors(f"{fixture_dir}/unet-io.safetensors")
    worst = 0.0
    for case in sorted({k.split(".")[0] for k in io}):
        with torch.no_grad():
            eps = model(io[f"{case}.x"], io[f"{case}.timesteps"], io[f"{case}.context"], io[f"{case}.y"])
        ref = io[f"{case}.eps"]
        rel = ((eps - ref).abs().max() / ref.abs().max()).item()
        worst = max(worst, rel)
        print(f"check {fixture_dir} {case}: max |eps - sgm eps| / max |sgm eps| = {rel:.2e}")
    ok = worst < 1e-4
    print("CHECK", "OK" if ok else "FAILED")
    return ok


def setup(args):
    """The model (random weights, on the device) and one CFG batch of inputs."""
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    torch.manual_seed(0)
    cfg = SDXL if args.config is None else json.load(open(args.config))["unet"]
    with device:  # initialise on the device: a 2.6 G-parameter CPU init would dominate the run
        model = UNet(cfg)
    model = model.to(dtype=dtype).eval()
    h, w = args.height // 8, args.width // 8
    g = torch.Generator(device="cpu").manual_seed(1)
    x = torch.randn(2, 4, h, w, generator=g).to(device)
    context = torch.randn(2, 77, cfg["context_dim"], generator=g).to(device)
    y = torch.randn(2, cfg["adm_in_channels"], generator=g).to(device)
    return device, dtype, cfg, model, x, context, y


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def host(args):
    """What the host pays: tiny ops (as tenmin's GpuCheck measures them) and one U-Net call (aten ops, issue time)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    g = torch.Generator(device="cpu").manual_seed(7)
    r = lambda *shape: torch.randn(*shape, generator=g).to(device=device, dtype=dtype)
    a, b, w, bias, gamma = r(8, 64), r(8, 64), r(64, 64), r(64), r(64)
    img, cw, q = r(2, 64, 4, 4), r(64, 64, 1, 1), r(2, 2, 16, 64)
    f32 = torch.randn(8, 64, generator=g).to(device)
    ops = [("add", lambda: a + b), ("mul", lambda: a * b), ("silu", lambda: F.silu(a)),
           ("cast f32 -> bf16", lambda: f32.to(dtype)), ("reshape (view)", lambda: a.reshape(64, 8)),
           ("permute", lambda: a.permute(1, 0)), ("matmul", lambda: a @ w.t()), ("linear (bias)", lambda: F.linear(a, w, bias)),
           ("conv 1x1", lambda: F.conv2d(img, cw)), ("group norm", lambda: F.group_norm(img, 32, gamma, bias, 1e-5)),
           ("layer norm", lambda: F.layer_norm(a, (64,), gamma, bias, 1e-5)),
           ("attention", lambda: F.scaled_dot_product_attention(q, q, q, scale=0.125)), ("sum", lambda: a.sum(1))]
    n = 2000
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}:"
          f" host cost per op (tiny {args.dtype} tensors; median of 5 batches of {n}; issue only / synchronized each)")
    with torch.inference_mode():
        for name, op in ops:
            issue, synced = [], []
            for rep in range(6):
                sync(device)
                t0 = time.perf_counter()
                for _ in range(n):
                    op()
                t1 = time.perf_counter()
                sync(device)
                t2 = time.perf_counter()
                for _ in range(n // 4):
                    op()
                    sync(device)
                t3 = time.perf_counter()
                if rep:
                    issue.append((t1 - t0) / n * 1e6)
                    synced.append((t3 - t2) / (n // 4) * 1e6)
            print(f"  {name:22s} {statistics.median(issue):7.2f} us issued  {statistics.median(synced):7.2f} us synchronized")

    device, dtype, cfg, model, x, context, y = setup(args)
    t = torch.full((2,), 500.0, device=device)

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += 1
            return func(*args, **(kwargs or {}))

    with torch.inference_mode():
        for _ in range(2):
            model(x, t, context, y)
        counter = Count()
        with counter:
            model(x, t, context, y)
        issue, total = [], []
        for _ in range(5):
            sync(device)
            t0 = time.perf_counter()
            model(x, t, context, y)
            t1 = time.perf_counter()
            sync(device)
            issue.append((t1 - t0) * 1e3)
            total.append((time.perf_counter() - t0) * 1e3)
    print(f"one U-Net call at batch 2, {args.width}x{args.height}: {counter.n} aten ops; host issues it in"
          f" {statistics.median(issue):.1f} ms, the device finishes at {statistics.median(total):.1f} ms (median of 5)")


def bench(args):
    device, dtype, cfg, model, x, context, y = setup(args)
    params = sum(p.numel() for p in model.parameters())
    timesteps = torch.linspace(999, 0, args.steps)

    def image():
        latents = x
        with torch.inference_mode():
            for t in timesteps:
                eps = model(latents, t.repeat(2).to(device), context, y)
                latents = latents - 0.01 * eps  # stands in for the sampler's elementwise update
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        image()
    times = []
    for i in range(args.runs):
        profiled = args.cuda_profile and device.type == "cuda" and i == args.runs - 1
        if profiled:  # the region `ncu --profile-from-start off` records: the last timed image
            torch.cuda.synchronize()
            torch.cuda.profiler.start()
        t0 = time.perf_counter()
        image()
        times.append(time.perf_counter() - t0)
        if profiled:
            torch.cuda.profiler.stop()
    med = statistics.median(times)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    what = "SDXL" if args.config is None else args.config
    print(f"PyTorch {torch.__version__} eager on {name}, {args.dtype}, {what} U-Net ({params / 1e9:.3f} G parameters),"
          f" {args.width}x{args.height}, {args.steps} calls at batch 2 (CFG); median of {args.runs} after {args.warmup}"
          f" warm-up: {med:.3f} s per image ({1000 * med / args.steps:.1f} ms per U-Net call)")
    if device.type == "cuda":
        print(f"peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", metavar="FIXTURE_DIR", help="compare with a fixture's unet-io instead of timing")
    p.add_argument("--config", metavar="CONFIG_JSON", help="U-Net sizes from a fixtures-style config.json (default: SDXL)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=1024)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--host", action="store_true", help="report the host's cost per op and per U-Net call instead")
    p.add_argument("--cuda-profile", action="store_true",
                   help="make the last timed image the region of `ncu --profile-from-start off` (cudaProfilerStart/Stop)")
    args = p.parse_args()
    if args.check:
        raise SystemExit(0 if check(args.check) else 1)
    if args.host:
        host(args)
        return
    bench(args)


if __name__ == "__main__":
    main()
