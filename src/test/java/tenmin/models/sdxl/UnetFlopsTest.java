package tenmin.models.sdxl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Generator;
import tenmin.engine.api.OpStats;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.meta.MetaBackend;
import tenmin.models.nn.RandomParams;

/**
 * The FLOPs {@link OpStats} counts for a U-Net forward, run on the shape-only backend, against the
 * architecture counted by hand here (sgm's UNetModel layer by layer: every conv as 2·N·Ho·Wo·O·C·k², every
 * linear as 2·rows·in·out, attention as 2·N·Tq·Tk·C for the scores and again for P·V), for the fixtures' tiny
 * shape and for full SDXL, and the backward-only op and FLOP counts of single ops.
 */
class UnetFlopsTest {

    @Test
    void forwardFlopsOfTheTinyAndTheFullUnetMatchTheArchitectureCountedByHand() {
        UnetConfig tiny = new UnetConfig(4, 4, 32, List.of(1, 2, 4), 2, List.of(4, 2), List.of(1, 1, 2), 2, 8, 64, 1568);
        assertForwardFlops(tiny, 2, 16, 24, 77);
        assertForwardFlops(UnetConfig.sdxlBase(), 8, 128, 128, 77);
    }

    private static void assertForwardFlops(UnetConfig c, int n, int h, int w, int tokens) {
        OpStats stats = new OpStats();
        try (MetaBackend meta = new MetaBackend(Device.cuda(0)); Scope model = Scope.root(stats.wrap(meta), "model")) {
            Unet unet = new Unet(c, RandomParams.of(Unet.KEY_PREFIX, model, DType.BF16, 1), Unet.Precision.of(DType.BF16));
            try (Scope step = model.child("step")) {
                Tensor x = step.zeros(Shape.of(n, c.inChannels(), h, w), DType.F32);
                Tensor t = step.fromHost(new long[n], n);
                Tensor ctx = step.zeros(Shape.of(n, tokens, c.contextDim()), DType.BF16);
                Tensor y = step.zeros(Shape.of(n, c.admInChannels()), DType.F32);
                stats.reset();
                unet.forward(Functional.inference(step), x, t, ctx, y);
            }
        }
        double expected = handCount(c, n, h, w, tokens);
        assertEquals(expected, stats.snapshot().flops(), expected * 1e-12, "U-Net forward FLOPs at " + n + "x" + h + "x" + w);
    }

    /** sgm UNetModel's matrix work, walked level by level as its constructor builds it. */
    private static double handCount(UnetConfig c, int n, int h, int w, int tokens) {
        double c0 = c.modelChannels();
        double e = 4 * c0;
        double f = 2.0 * n * (c0 * e + e * e + c.admInChannels() * e + e * e);       // time_embed, label_emb
        f += conv(n, h, w, c.inChannels(), c0, 3);                                   // input_blocks.0
        java.util.ArrayList<Integer> skips = new java.util.ArrayList<>(List.of((int) c0));
        int ch = (int) c0;
        int hh = h;
        int ww = w;
        for (int level = 0; level < c.levels(); level++) {
            int out = c.channels(level);
            for (int r = 0; r < c.numResBlocks(); r++) {
                f += resBlock(n, hh, ww, ch, out, e);
                ch = out;
                if (c.hasAttention(level)) {
                    f += transformer(n, hh * ww, ch, c.transformerDepth().get(level), tokens, c.contextDim());
                }
                skips.add(ch);
            }
            if (level != c.levels() - 1) {
                f += conv(n, hh / 2, ww / 2, ch, ch, 3);                             // Downsample, stride 2
                hh /= 2;
                ww /= 2;
                skips.add(ch);
            }
        }
        f += 2 * resBlock(n, hh, ww, ch, ch, e) + transformer(n, hh * ww, ch, c.transformerDepthMiddle(), tokens,
                c.contextDim());
        for (int level = c.levels() - 1; level >= 0; level--) {
            int out = c.channels(level);
            for (int r = 0; r <= c.numResBlocks(); r++) {
                f += resBlock(n, hh, ww, ch + skips.removeLast(), out, e);
                ch = out;
                if (c.hasAttention(level)) {
                    f += transformer(n, hh * ww, ch, c.transformerDepth().get(level), tokens, c.contextDim());
                }
                if (level > 0 && r == c.numResBlocks()) {
                    hh *= 2;
                    ww *= 2;
                    f += conv(n, hh, ww, ch, ch, 3);                                 // Upsample
                }
            }
        }
        return f + conv(n, h, w, c0, c.outChannels(), 3);                              // out.2
    }

    /** 2·N·Ho·Wo·O·C·k². */
    private static double conv(int n, int ho, int wo, double in, double out, int k) {
        return 2.0 * n * ho * wo * out * in * k * k;
    }

    private static double resBlock(int n, int h, int w, double in, double out, double emb) {
        double f = conv(n, h, w, in, out, 3) + 2.0 * n * emb * out + conv(n, h, w, out, out, 3);
        return in == out ? f : f + conv(n, h, w, in, out, 1);
    }

    private static double transformer(int n, int hw, double c, int depth, int tokens, int ctx) {
        double rows = (double) n * hw;
        double f = 2 * 2 * rows * c * c;                                  // proj_in, proj_out
        for (int d = 0; d < depth; d++) {
            f += 4 * 2 * rows * c * c + 2 * 2 * n * (double) hw * hw * c;  // attn1: q, k, v, out; scores, P·V
            f += 2 * 2 * rows * c * c + 2 * 2.0 * n * tokens * ctx * c     // attn2: q, out; k, v on the context
                    + 2 * 2 * n * (double) hw * tokens * c;               //        scores, P·V
            f += 2 * rows * c * 8 * c + 2 * rows * 4 * c * c;              // ff: C -> 8C (GEGLU), 4C -> C
        }
        return f;
    }

    @Test
    void backwardKernelsCountTheProductsTheyRun() {
        OpStats stats = new OpStats();
        try (MetaBackend meta = new MetaBackend(Device.CPU); Scope s = Scope.root(stats.wrap(meta), "s")) {
            Backend b = s.backend();
            Generator g = new Generator(1);
            Tensor x = s.randn(Shape.of(2, 4, 5, 5), DType.F32, g);
            Tensor wt = s.randn(Shape.of(8, 4, 3, 3), DType.F32, g);
            Tensor dy = s.randn(Shape.of(2, 8, 5, 5), DType.F32, g);
            stats.reset();
            b.convolution(s, x, wt, null, 1, 1);
            assertEquals(2.0 * 2 * 8 * 5 * 5 * 4 * 9, stats.snapshot().flops());
            stats.reset();
            b.convolutionBackward(s, dy, x, wt, 1, 1, Backend.OutputMask.INPUT_ONLY);
            assertEquals(2.0 * 2 * 8 * 5 * 5 * 4 * 9, stats.snapshot().flops(), "dx only: one product");
            stats.reset();
            b.convolutionBackward(s, dy, x, wt, 1, 1, new Backend.OutputMask(true, true, false));
            assertEquals(2 * 2.0 * 2 * 8 * 5 * 5 * 4 * 9, stats.snapshot().flops(), "dx and dWeight: two");
            Tensor q = s.randn(Shape.of(2, 3, 10, 16), DType.F32, g);
            Tensor k = s.randn(Shape.of(2, 3, 7, 16), DType.F32, g);
            Tensor v = s.randn(Shape.of(2, 3, 7, 8), DType.F32, g);
            stats.reset();
            Backend.AttentionResult r = b.attention(s, q, k, v, false, 0.25);
            assertEquals(2.0 * 2 * 3 * 10 * 7 * (16 + 8), stats.snapshot().flops());
            stats.reset();
            b.attentionBackward(s, s.zeros(Shape.of(2, 3, 10, 8), DType.F32), q, k, v, r, false, 0.25);
            assertEquals(2.0 * 2 * 3 * 10 * 7 * (3 * 16 + 2 * 8), stats.snapshot().flops());
            stats.reset();
            b.matmul(s, s.zeros(Shape.of(5, 6, 7), DType.F32), s.zeros(Shape.of(5, 8, 7), DType.F32), false, true);
            OpStats.Snapshot snap = stats.snapshot();
            assertEquals(2.0 * 5 * 6 * 8 * 7, snap.flops());
            assertEquals(3, snap.ops(), "two zeros and the product");
            assertEquals(0, snap.syncPoints());
        }
    }
}
