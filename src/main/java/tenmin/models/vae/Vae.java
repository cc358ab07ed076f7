package tenmin.models.vae;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.models.nn.CheckpointParams;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.Params;

/**
 * The SDXL autoencoder (sgm {@code AutoencoderKL}), inference only: {@link #encode} an image in [-1, 1]
 * to the diagonal Gaussian posterior of its latent, {@link #decode} a latent back to an image.
 *
 * <p>Latents here are the VAE's own; the diffusion model sees {@code latent · }{@link #SCALE_FACTOR}.
 * sd-scripts caches the unscaled random sample (trainer-spec §3.6) and multiplies when training;
 * sampling decodes {@code x / SCALE_FACTOR} (§11). Runs in the dtype of its weights — fp32, as the recipe's
 * {@code --no_half_vae} asks ({@link #load}) — one image at a time, freeing every intermediate map as soon as
 * it is used and splitting large convolutions into row bands ({@link #setConvColumnBudget}), so a 1024²
 * image fits in a few GB on the CPU backend (docs/PERFORMANCE.md).
 */
public final class Vae {
    /** SDXL's latent scale factor: the U-Net works on {@code latent · 0.13025} (sgm {@code scale_factor}). */
    public static final double SCALE_FACTOR = 0.13025;
    /** sgm {@code DiagonalGaussianDistribution} clamps the log-variance to [-30, 20]. */
    public static final double LOGVAR_MIN = -30.0;
    public static final double LOGVAR_MAX = 20.0;
    /**
     * Default working-buffer budget of one convolution call, in elements (2^26 floats = 256 MB): the
     * CPU backend's im2col matrix of a 3x3 convolution is C·9·Ho·Wo floats.
     */
    public static final long DEFAULT_CONV_COLUMN_ELEMENTS = 1L << 26;

    private final VaeConfig config;
    private final VaeEncoder encoder;
    private final Conv2d quantConv;
    private final Conv2d postQuantConv;
    private final VaeDecoder decoder;
    private VaeOps ops = new VaeOps(DEFAULT_CONV_COLUMN_ELEMENTS);

    /**
     * The VAE from {@link Params} rooted at its key prefix ({@link VaeKeys#PREFIX} in an SDXL checkpoint):
     * checkpoint, meta (key inventory) or random weights.
     */
    public Vae(Params p, VaeConfig config) {
        this.config = config;
        this.encoder = new VaeEncoder(p.at(VaeKeys.ENCODER), config);
        this.decoder = new VaeDecoder(p.at(VaeKeys.DECODER), config);
        int z2 = config.doubleZ() ? 2 * config.zChannels() : config.zChannels();
        int e2 = config.doubleZ() ? 2 * config.embedDim() : config.embedDim();
        this.quantConv = new Conv2d(p.at(VaeKeys.QUANT_CONV), z2, e2, 1, 1, 0, true);
        this.postQuantConv = new Conv2d(p.at(VaeKeys.POST_QUANT_CONV), config.embedDim(), config.zChannels(), 1, 1, 0,
                true);
    }

    /**
     * The VAE of a single-file SDXL checkpoint (fp16, bf16 or fp32 file), weights in fp32 in {@code scope}.
     * A missing or mis-shaped key is an {@link tenmin.core.InputException} naming the file and the key.
     */
    public static Vae load(SafetensorsFile file, Scope scope, VaeConfig config) {
        return new Vae(CheckpointParams.of(file, VaeKeys.PREFIX, scope, DType.F32), config);
    }

    /** {@link #load(SafetensorsFile, Scope, VaeConfig)} with the real SDXL sizes. */
    public static Vae load(SafetensorsFile file, Scope scope) {
        return load(file, scope, VaeConfig.SDXL);
    }

    public VaeConfig config() {
        return config;
    }

    /**
     * Sets the largest working buffer (in elements) one convolution call may need; bigger convolutions
     * run in bands of output rows with identical results. Smaller saves memory, larger saves per-band copies.
     */
    public void setConvColumnBudget(long elements) {
        this.ops = new VaeOps(elements);
    }

    /**
     * The posterior of the latent of each image.
     *
     * @param moments (N, 2·embed, h, w): {@code quant_conv(encoder(image))}
     * @param mean    (N, embed, h, w): first half of the moments
     * @param logvar  (N, embed, h, w): second half, clamped to [{@link #LOGVAR_MIN}, {@link #LOGVAR_MAX}]
     */
    public record Posterior(Tensor moments, Tensor mean, Tensor logvar) {

        /** {@code mean + exp(logvar / 2) · noise} with standard normal noise from {@code gen}, in {@code scope}. */
        public Tensor sample(Scope scope, Generator gen) {
            try (Scope tmp = scope.child("posterior noise")) {
                Tensor noise = tmp.randn(mean.shape(), mean.dtype(), gen);
                return tmp.keep(sample(tmp, noise));
            }
        }

        /** {@code mean + exp(logvar / 2) · noise} for given noise of the mean's shape, in {@code scope}. */
        public Tensor sample(Scope scope, Tensor noise) {
            if (!noise.shape().equals(mean.shape())) {
                throw new IllegalArgumentException("posterior noise " + noise.describe() + " does not match mean "
                        + mean.describe());
            }
            try (Scope tmp = scope.child("posterior sample")) {
                Functional f = Functional.inference(tmp);
                Tensor std = f.exp(f.scale(logvar, 0.5));
                return tmp.keep(f.add(mean, f.mul(std, noise)));
            }
        }
    }

    /**
     * Encodes images (N, in, H, W) with values in [-1, 1] (sides divisible by {@link VaeConfig#downsampleFactor()}
     * for the usual (H/8, W/8) latent) into the posterior of their latents, in {@code scope}. Images are
     * processed one at a time.
     */
    public Posterior encode(Scope scope, Tensor image) {
        if (image.rank() != 4 || image.dim(1) != config.inChannels()) {
            throw new IllegalArgumentException("VAE encode expects (N, " + config.inChannels() + ", H, W), got "
                    + image.describe());
        }
        if (!config.doubleZ()) {
            throw new IllegalStateException("a VAE without double_z has no posterior variance");
        }
        Tensor moments = perImage(scope, image, (f, x) -> {
            Tensor h = encoder.forward(f, ops, x);                            // (1, 2z, h, w)
            return VaeOps.then(h, t -> ops.conv(f, quantConv, t));            // (1, 2·embed, h, w)
        });
        Functional f = Functional.inference(scope);
        int e = config.embedDim();
        Tensor mean = f.narrow(moments, 1, 0, e);
        Tensor logvar = VaeOps.then(f.narrow(moments, 1, e, e), t -> f.clamp(t, LOGVAR_MIN, LOGVAR_MAX));
        return new Posterior(moments, mean, logvar);
    }

    /**
     * Decodes latents (N, embed, h, w) — unscaled: divide a diffusion latent by {@link #SCALE_FACTOR}
     * first — into images (N, out, h·f, w·f), roughly in [-1, 1] (not clamped), in {@code scope}.
     * Latents are processed one at a time.
     */
    public Tensor decode(Scope scope, Tensor latent) {
        if (latent.rank() != 4 || latent.dim(1) != config.embedDim()) {
            throw new IllegalArgumentException("VAE decode expects (N, " + config.embedDim() + ", h, w), got "
                    + latent.describe());
        }
        return perImage(scope, latent, (f, z) -> {
            Tensor h = ops.conv(f, postQuantConv, z);
            return VaeOps.then(h, t -> decoder.forward(f, ops, t));
        });
    }

    /** Runs {@code body} on each image of x (batch of 1 each) and concatenates the results in {@code scope}. */
    private static Tensor perImage(Scope scope, Tensor x, BiFunction<Functional, Tensor, Tensor> body) {
        Functional f = Functional.inference(scope);
        if (x.dim(0) == 1) {
            return VaeOps.scoped(f, "vae image", g -> body.apply(g, x));
        }
        List<Tensor> outs = new ArrayList<>();
        try (Scope parts = scope.child("vae images")) {
            Functional pf = Functional.inference(parts);
            for (int i = 0; i < x.dim(0); i++) {
                int index = i;
                outs.add(VaeOps.scoped(pf, "vae image " + i, g -> body.apply(g, g.narrow(x, 0, index, 1))));
            }
            return parts.keep(pf.cat(outs, 0));
        }
    }
}
