package tenmin.bench;

import tenmin.sample.Denoiser;
import tenmin.sample.NoiseSchedule;
import tenmin.sample.Sampler;
import tenmin.sample.SamplerKind;
import tenmin.sample.TorchGenerator;

/**
 * Host-side cost of the samplers for one 1024x1024 SDXL image (latents 1x4x128x128, 30 steps) with a
 * denoiser that costs nothing, i.e. everything but the U-Net (not a test; run by hand like
 * {@link TokenizerBench}).
 */
public final class SamplerBench {
    private SamplerBench() {
    }

    public static void main(String[] args) {
        int n = 4 * 128 * 128;
        float[] eps = new TorchGenerator(1).next(n);
        Denoiser free = (input, t) -> eps.clone();
        for (int round = 0; round < 5; round++) {
            StringBuilder line = new StringBuilder("round " + round + ":");
            for (SamplerKind kind : SamplerKind.values()) {
                Sampler s = Sampler.create(Sampler.Settings.of(kind, 30), NoiseSchedule.sdxl());
                long start = System.nanoTime();
                TorchGenerator g = new TorchGenerator(42);
                s.run(s.initialLatents(g, n), free, g);
                line.append(String.format(" %s %.1f ms;", kind.a1111Name(), (System.nanoTime() - start) / 1e6));
            }
            System.out.println(line);
        }
    }
}
