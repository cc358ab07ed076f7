package tenmin.sample;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.models.sdxl.Unet;

/**
 * The U-Net as a {@link Denoiser} for a batch of jobs: conditioning uploaded once, each call runs
 * {@code [uncond_1..uncond_J, cond_1..cond_J]} (or only the conditional half when unguided) and combines.
 *
 * <p>When the prompt and the negative prompt have different lengths (A1111's default, no padding), the
 * unconditional and conditional halves run as two U-Net batches of J samples each, as A1111's CFG denoiser
 * does; the caller then sets per-sample LoRA multipliers for J samples ({@link #samplesPerCall()}).
 */
final class UnetDenoiser implements Denoiser {
    /** Host time spent issuing U-Net calls, and waiting for their results (on a GPU: the device still busy). */
    private long issueNanos;
    private long waitNanos;
    private final Unet unet;
    private final boolean guided;
    private final double cfgScale;
    private final int[] chw;
    private final int samples;
    private final List<Call> calls;

    /** One U-Net batch: its conditioning and how many samples it holds. */
    private record Call(Tensor context, Tensor y, int samples) { // context (n, T, C1 + C2), y (n, P + 1536)
    }

    UnetDenoiser(Unet unet, Scope scope, List<PromptEncoder.Pair> text, boolean guided,
                 double cfgScale, int[] chw, List<int[]> sizes) {
        this.unet = unet;
        this.guided = guided;
        this.cfgScale = cfgScale;
        this.chw = chw.clone();
        int jobs = text.size();
        this.samples = guided ? 2 * jobs : jobs;
        List<PromptEncoder.Embedding> rows = new ArrayList<>();
        if (guided) {
            text.forEach(p -> rows.add(p.uncond()));
        }
        text.forEach(p -> rows.add(p.cond()));
        List<Call> list = new ArrayList<>();
        if (splits(text, guided)) {
            list.add(call(scope, rows.subList(0, jobs), sizes.subList(0, jobs)));
            list.add(call(scope, rows.subList(jobs, 2 * jobs), sizes.subList(jobs, 2 * jobs)));
        } else {
            list.add(call(scope, rows, sizes));
        }
        this.calls = List.copyOf(list);
    }

    /** True when the unconditional and conditional halves run as separate batches (different lengths). */
    static boolean splits(List<PromptEncoder.Pair> text, boolean guided) {
        return guided && text.getFirst().cond().tokens() != text.getFirst().uncond().tokens();
    }

    /** Samples of each U-Net batch: what per-sample LoRA multipliers must cover. */
    static int samplesPerCall(List<PromptEncoder.Pair> text, boolean guided) {
        return splits(text, guided) || !guided ? text.size() : 2 * text.size();
    }

    private static Call call(Scope scope, List<PromptEncoder.Embedding> rows, List<int[]> sizes) {
        int n = rows.size();
        int tokens = rows.getFirst().tokens();
        int width = rows.getFirst().context().length / tokens;
        int pooledWidth = rows.getFirst().pooled().length;
        float[] ctx = new float[n * tokens * width];
        float[] pooled = new float[n * pooledWidth];
        for (int i = 0; i < n; i++) {
            PromptEncoder.Embedding e = rows.get(i);
            if (e.tokens() != tokens) {
                throw new IllegalStateException("samples of one U-Net batch have " + tokens + " and " + e.tokens()
                        + " tokens");
            }
            System.arraycopy(e.context(), 0, ctx, i * tokens * width, tokens * width);
            System.arraycopy(e.pooled(), 0, pooled, i * pooledWidth, pooledWidth);
        }
        Tensor context = scope.fromHost(ctx, n, tokens, width).named("context");
        Functional f = Functional.inference(scope);
        Tensor y = SdxlConditioning.vector(f, scope.fromHost(pooled, n, pooledWidth),
                SdxlConditioning.sizeTensor(scope, sizes)).named("y");
        return new Call(context, y, n);
    }

    @Override
    public float[] predictNoise(float[] input, double timestep) {
        int perSample = chw[0] * chw[1] * chw[2];
        int jobs = input.length / perSample;
        float[] eps = new float[samples * perSample];
        int done = 0;
        for (Call call : calls) {
            // a call holds whole copies of the jobs' latents: J (one half) or 2J (both halves)
            float[] x = new float[call.samples() * perSample];
            for (int k = 0; k < call.samples() / jobs; k++) {
                System.arraycopy(input, 0, x, k * input.length, input.length);
            }
            float[] out = run(call, x, timestep);
            System.arraycopy(out, 0, eps, done * perSample, out.length);
            done += call.samples();
        }
        if (!guided) {
            return eps;
        }
        return Guidance.combine(Arrays.copyOfRange(eps, 0, jobs * perSample),
                Arrays.copyOfRange(eps, jobs * perSample, 2 * jobs * perSample), cfgScale);
    }

    private float[] run(Call call, float[] x, double timestep) {
        // Every block in its own scope (inference "checkpointing"): only block outputs and skips stay alive, as
        // in an eager PyTorch forward, instead of every intermediate of the network until the step ends.
        CheckpointPolicy previous = unet.checkpointing();
        unet.setCheckpointing(CheckpointPolicy.all());
        Scope scope = call.context().scope();
        try (Scope step = scope.child("unet step")) {
            Functional f = Functional.inference(step);
            float[] t = new float[call.samples()];
            Arrays.fill(t, (float) timestep);
            long t0 = System.nanoTime();
            Tensor out = unet.forward(f, step.fromHost(x, call.samples(), chw[0], chw[1], chw[2]),
                    step.fromHost(t, call.samples()), call.context(), call.y()); // (n, C, h, w) F32
            long t1 = System.nanoTime();
            float[] eps = out.toHost(); // sync point: the sampler works on the host
            issueNanos += t1 - t0;
            waitNanos += System.nanoTime() - t1;
            return eps;
        } finally {
            unet.setCheckpointing(previous);
        }
    }

    /** Nanoseconds the host spent issuing U-Net calls so far (uploads and ops, before waiting for the result). */
    long issueNanos() {
        return issueNanos;
    }

    /** Nanoseconds the host spent waiting for U-Net results so far (on a GPU: work the host had queued ahead). */
    long waitNanos() {
        return waitNanos;
    }
}
