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
 */
final class UnetDenoiser implements Denoiser {
    private final Unet unet;
    private final Scope scope;
    private final boolean guided;
    private final double cfgScale;
    private final int[] chw;
    private final int samples;
    private final Tensor context; // (samples, T, C1 + C2)
    private final Tensor y;       // (samples, P + 1536)

    UnetDenoiser(Unet unet, Scope scope, List<PromptEncoder.Pair> text, boolean guided,
                 double cfgScale, int[] chw, List<int[]> sizes) {
        this.unet = unet;
        this.scope = scope;
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
        int tokens = rows.getFirst().tokens();
        int width = rows.getFirst().context().length / tokens;
        int pooledWidth = rows.getFirst().pooled().length;
        float[] ctx = new float[samples * tokens * width];
        float[] pooled = new float[samples * pooledWidth];
        for (int i = 0; i < samples; i++) {
            PromptEncoder.Embedding e = rows.get(i);
            if (e.tokens() != tokens) {
                throw new IllegalStateException("jobs of one batch have " + tokens + " and " + e.tokens() + " tokens");
            }
            System.arraycopy(e.context(), 0, ctx, i * tokens * width, tokens * width);
            System.arraycopy(e.pooled(), 0, pooled, i * pooledWidth, pooledWidth);
        }
        this.context = scope.fromHost(ctx, samples, tokens, width).named("context");
        Functional f = Functional.inference(scope);
        this.y = SdxlConditioning.vector(f, scope.fromHost(pooled, samples, pooledWidth),
                SdxlConditioning.sizeTensor(scope, sizes)).named("y");
    }

    @Override
    public float[] predictNoise(float[] input, double timestep) {
        int perSample = chw[0] * chw[1] * chw[2];
        int jobs = input.length / perSample;
        float[] x = input;
        if (guided) {
            x = new float[2 * input.length];
            System.arraycopy(input, 0, x, 0, input.length);
            System.arraycopy(input, 0, x, input.length, input.length);
        }
        float[] eps;
        // Every block in its own scope (inference "checkpointing"): only block outputs and skips stay alive, as
        // in an eager PyTorch forward, instead of every intermediate of the network until the step ends.
        CheckpointPolicy previous = unet.checkpointing();
        unet.setCheckpointing(CheckpointPolicy.all());
        try (Scope step = scope.child("unet step")) {
            Functional f = Functional.inference(step);
            float[] t = new float[samples];
            Arrays.fill(t, (float) timestep);
            Tensor out = unet.forward(f, step.fromHost(x, samples, chw[0], chw[1], chw[2]), step.fromHost(t, samples),
                    context, y);                                                  // (samples, C, h, w) F32
            eps = out.toHost(); // sync point: the sampler works on the host
        } finally {
            unet.setCheckpointing(previous);
        }
        if (!guided) {
            return eps;
        }
        return Guidance.combine(Arrays.copyOfRange(eps, 0, jobs * perSample),
                Arrays.copyOfRange(eps, jobs * perSample, 2 * jobs * perSample), cfgScale);
    }
}
