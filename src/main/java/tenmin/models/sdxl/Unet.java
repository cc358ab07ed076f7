package tenmin.models.sdxl;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.CheckpointParams;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.Linear;
import tenmin.models.nn.MetaParams;
import tenmin.models.nn.Params;

/**
 * The SDXL U-Net, sgm {@code UNetModel} module for module, so checkpoint keys and LoRA names are the SAI
 * ones: {@code eps = unet(x, timesteps, context, y)}.
 *
 * <pre>
 * emb = time_embed.2( silu( time_embed.0( E(t, C0) ) ) )          E: sinusoid, cos first
 *     + label_emb.0.2( silu( label_emb.0.0(y) ) )                 (N, 4·C0)
 * h   = input_blocks.0.0(x)                                       conv 3x3, in → C0
 * per level: num_res_blocks × [ResBlock (+ SpatialTransformer)], then Downsample (not after the last)
 * middle_block = ResBlock, SpatialTransformer, ResBlock
 * per level, deepest first: (num_res_blocks + 1) × [cat(h, skip) → ResBlock (+ SpatialTransformer)],
 *     Upsample after the last of a level (not level 0)
 * eps = out.2( silu( out.0(h) ) )                                  GroupNorm32, conv 3x3, C0 → out
 * </pre>
 *
 * <p>Precision: weights stay in the dtype their {@link Params} gave them; activations run in the
 * {@link Precision#compute() compute dtype} (inputs are cast on entry; weights of another dtype are
 * cast per op); group norms compute in fp32 like sgm's {@code GroupNorm32} and PyTorch's autocast when
 * {@link Precision#fp32GroupNorm()}; the output is fp32 (accelerate converts the model output).
 *
 * <p>Gradient checkpointing: each block of input_blocks 1.., middle_block and output_blocks can be
 * recomputed in the backward ({@link #setCheckpointing}); results are identical either way. Inside a
 * checkpointed block the recomputation goes layer by layer, as sd-scripts' {@code sdxl_original_unet} does it:
 * each ResBlock, each BasicTransformerBlock and each Up/Downsample keeps only its inputs, so the backward
 * holds one transformer layer's activations at a time, not a whole 10-layer SpatialTransformer's; a
 * SpatialTransformer's norm and projections, and an output block's skip concatenation, keep theirs. The stem
 * conv {@code input_blocks.0} is never checkpointed: its output is kept as a skip anyway.
 *
 * <p>Not thread-safe; one forward at a time.
 */
public final class Unet {
    /** Checkpoint key prefix of the U-Net in single-file SDXL checkpoints. */
    public static final String KEY_PREFIX = "model.diffusion_model.";

    /**
     * Activation precision.
     *
     * @param compute       dtype of activations (bf16 on the GPU path, f32 on the CPU reference)
     * @param fp32GroupNorm widen to fp32 around every group norm (sgm {@code GroupNorm32}); redundant on
     *                      backends whose bf16 group norm already accumulates and applies the affine in fp32
     */
    public record Precision(DType compute, boolean fp32GroupNorm) {
        public Precision {
            if (!compute.isFloat()) {
                throw new IllegalArgumentException("compute dtype must be floating, got " + compute);
            }
        }

        /** {@code compute} activations with fp32 group norms (the reference semantics). */
        public static Precision of(DType compute) {
            return new Precision(compute, true);
        }
    }

    /** One {@code TimestepEmbedSequential}: a named list of layers. */
    private record Block(String name, List<UnetLayer> layers) {
        Tensor forward(Functional f, Tensor h, Tensor emb, Tensor context, boolean checkpoint) {
            Tensor cur = h;
            for (UnetLayer layer : layers) {
                Tensor next = layer.forward(f, cur, emb, context, checkpoint);
                if (cur != h) {
                    f.release(cur);          // a layer's output inside the block, used by the next layer only
                }
                cur = next;
            }
            return cur;
        }
    }

    private final UnetConfig config;
    private final Params params;
    private final Precision precision;
    private final Linear timeEmbed0;
    private final Linear timeEmbed2;
    private final Linear labelEmb0;
    private final Linear labelEmb2;
    private final Conv2d stem;           // input_blocks.0.0
    private final List<Block> inputBlocks = new ArrayList<>();   // input_blocks.1 ..
    private final Block middleBlock;
    private final List<Block> outputBlocks = new ArrayList<>();
    private final GroupNorm outNorm;
    private final Conv2d outConv;
    private CheckpointPolicy checkpointing = CheckpointPolicy.none();

    /**
     * Builds the U-Net from {@code p} (at the U-Net root, e.g. {@link CheckpointParams} with prefix
     * {@link #KEY_PREFIX}), asking for every weight in the checkpoint's key order.
     */
    public Unet(UnetConfig config, Params p, Precision precision) {
        this.config = config;
        this.params = p;
        this.precision = precision;
        boolean fp32 = precision.fp32GroupNorm();
        int c0 = config.modelChannels();
        int embDim = config.timeEmbedDim();
        timeEmbed0 = new Linear(p.at("time_embed.0"), c0, embDim, true);
        timeEmbed2 = new Linear(p.at("time_embed.2"), embDim, embDim, true);
        labelEmb0 = new Linear(p.at("label_emb.0.0"), config.admInChannels(), embDim, true);
        labelEmb2 = new Linear(p.at("label_emb.0.2"), embDim, embDim, true);

        // Encoder: sgm UNetModel.__init__, input_blocks.
        stem = new Conv2d(p.at("input_blocks.0.0"), config.inChannels(), c0, 3, 1, 1, true);
        List<Integer> skipChannels = new ArrayList<>(List.of(c0));
        int ch = c0;
        int index = 1;
        for (int level = 0; level < config.levels(); level++) {
            for (int r = 0; r < config.numResBlocks(); r++) {
                Params b = p.at("input_blocks").at(index);
                List<UnetLayer> layers = new ArrayList<>();
                layers.add(new ResBlock(b.at(0), ch, config.channels(level), embDim, fp32));
                ch = config.channels(level);
                if (config.hasAttention(level)) {
                    layers.add(transformer(b.at(1), ch, config.transformerDepth().get(level)));
                }
                inputBlocks.add(new Block("input_blocks." + index++, layers));
                skipChannels.add(ch);
            }
            if (level != config.levels() - 1) {
                Params b = p.at("input_blocks").at(index);
                inputBlocks.add(new Block("input_blocks." + index++, List.of(Resample.down(b.at(0), ch))));
                skipChannels.add(ch);
            }
        }

        Params m = p.at("middle_block");
        middleBlock = new Block("middle_block", List.of(
                new ResBlock(m.at(0), ch, ch, embDim, fp32),
                transformer(m.at(1), ch, config.transformerDepthMiddle()),
                new ResBlock(m.at(2), ch, ch, embDim, fp32)));

        // Decoder: deepest level first, one more block per level than the encoder, each eating a skip.
        index = 0;
        for (int level = config.levels() - 1; level >= 0; level--) {
            for (int r = 0; r <= config.numResBlocks(); r++) {
                Params b = p.at("output_blocks").at(index);
                int skip = skipChannels.removeLast();
                List<UnetLayer> layers = new ArrayList<>();
                layers.add(new ResBlock(b.at(0), ch + skip, config.channels(level), embDim, fp32));
                ch = config.channels(level);
                if (config.hasAttention(level)) {
                    layers.add(transformer(b.at(1), ch, config.transformerDepth().get(level)));
                }
                if (level > 0 && r == config.numResBlocks()) {
                    layers.add(Resample.up(b.at(layers.size()), ch));
                }
                outputBlocks.add(new Block("output_blocks." + index++, layers));
            }
        }
        outNorm = new GroupNorm(p.at("out.0"), UnetConfig.NORM_GROUPS, ch, UnetConfig.RES_NORM_EPS, fp32);
        outConv = new Conv2d(p.at("out.2"), c0, config.outChannels(), 3, 1, 1, true);
    }

    private SpatialTransformer transformer(Params p, int channels, int depth) {
        return new SpatialTransformer(p, channels, config.heads(channels), depth, config.contextDim(),
                precision.fp32GroupNorm());
    }

    /**
     * The U-Net of a single-file SDXL checkpoint (keys under {@link #KEY_PREFIX}), weights converted per
     * tensor to {@code dtype} and owned by a child scope "unet weights" of {@code scope}; activations in
     * {@code dtype}.
     *
     * @throws InputException naming the file and key when a U-Net key is missing or has another shape;
     *                        the weights read until then are released
     */
    public static Unet fromCheckpoint(SafetensorsFile file, UnetConfig config, Scope scope, DType dtype) {
        Scope weights = scope.child("unet weights");
        try {
            return new Unet(config, CheckpointParams.of(file, KEY_PREFIX, weights, dtype), Precision.of(dtype));
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    /** Shapes only (no memory): the key set via {@code ((MetaParams) params()).shapes()}, and the layer geometry. */
    public static Unet meta(UnetConfig config) {
        return new Unet(config, MetaParams.of(KEY_PREFIX), Precision.of(DType.F32));
    }

    /**
     * Predicts the noise.
     *
     * @param x         (N, in, H, W) noisy latents, any floating dtype; H and W divisible by 2^(levels-1)
     * @param timesteps (N) I64 or floating
     * @param context   (N, T, contextDim) text context (may carry gradient from trained text encoders)
     * @param y         (N, admIn) vector conditioning ({@link SdxlConditioning#vector})
     * @return (N, out, H, W) in F32
     */
    public Tensor forward(Functional f, Tensor x, Tensor timesteps, Tensor context, Tensor y) {
        checkInputs(x, timesteps, context, y);
        DType dt = precision.compute();
        Tensor tEmb = f.cast(f.sinusoidalEmbedding(timesteps, config.modelChannels()), dt); // (N, C0)
        Tensor emb = timeEmbed2.forward(f, f.silu(timeEmbed0.forward(f, tEmb)));           // (N, 4C0)
        Tensor label = labelEmb2.forward(f, f.silu(labelEmb0.forward(f, f.cast(y, dt))));  // (N, 4C0)
        emb = f.add(emb, label);
        Tensor ctx = f.cast(context, dt);                                                   // (N, T, D)

        Tensor xt = f.cast(x, dt);
        Tensor h = stem.forward(f, xt);                                                     // (N, C0, H, W)
        if (xt != x) {
            f.release(xt);                                                                  // a cast made here, not the input
        }
        List<Tensor> skips = new ArrayList<>();
        skips.add(h);
        for (Block b : inputBlocks) {
            h = b.forward(f, h, emb, ctx, checkpointing.checkpoints(b.name()));             // also a skip
            skips.add(h);
        }
        h = middleBlock.forward(f, h, emb, ctx, checkpointing.checkpoints(middleBlock.name()));
        for (Block b : outputBlocks) {
            Tensor skip = skips.removeLast();
            Tensor in = f.cat(1, h, skip);                                                  // (N, C + Cskip, H, W)
            Tensor out = b.forward(f, in, emb, ctx, checkpointing.checkpoints(b.name()));
            f.release(in, h, skip);                                                         // each used once
            h = out;
        }
        Tensor n = outNorm.forward(f, h);
        Tensor s = f.silu(n);
        Tensor eps = outConv.forward(f, s);                                                 // (N, out, H, W)
        f.release(h, n, s);
        Tensor eps32 = f.cast(eps, DType.F32);
        if (eps32 != eps) {
            f.release(eps);
        }
        return eps32;
    }

    private void checkInputs(Tensor x, Tensor timesteps, Tensor context, Tensor y) {
        int multiple = config.downFactor(config.levels() - 1);
        if (x.rank() != 4 || x.dim(1) != config.inChannels() || x.dim(2) % multiple != 0 || x.dim(3) % multiple != 0) {
            throw new IllegalArgumentException("U-Net input " + x.describe() + ": expected (N, " + config.inChannels()
                    + ", H, W) with H and W multiples of " + multiple);
        }
        int n = x.dim(0);
        if (timesteps.rank() != 1 || timesteps.dim(0) != n) {
            throw new IllegalArgumentException("U-Net timesteps " + timesteps.describe() + ": expected (" + n + ")");
        }
        if (context.rank() != 3 || context.dim(0) != n || context.dim(2) != config.contextDim()) {
            throw new IllegalArgumentException("U-Net context " + context.describe() + ": expected (" + n + ", T, "
                    + config.contextDim() + ")");
        }
        if (y.rank() != 2 || y.dim(0) != n || y.dim(1) != config.admInChannels()) {
            throw new IllegalArgumentException("U-Net vector conditioning " + y.describe() + ": expected (" + n + ", "
                    + config.admInChannels() + ")");
        }
    }

    /**
     * Sets which blocks are checkpointed from the next forward on.
     *
     * @throws IllegalArgumentException when the policy names a block this U-Net does not have
     */
    public void setCheckpointing(CheckpointPolicy policy) {
        List<String> names = blockNames();
        for (String b : policy.blocks()) {
            if (!names.contains(b)) {
                throw new IllegalArgumentException("checkpointing: this U-Net has no block '" + b + "' (it has "
                        + names.getFirst() + " .. " + names.getLast() + ")");
            }
        }
        this.checkpointing = policy;
    }

    public CheckpointPolicy checkpointing() {
        return checkpointing;
    }

    /** Names of the blocks that can be checkpointed, in forward order. */
    public List<String> blockNames() {
        List<String> names = new ArrayList<>();
        inputBlocks.forEach(b -> names.add(b.name()));
        names.add(middleBlock.name());
        outputBlocks.forEach(b -> names.add(b.name()));
        return names;
    }

    public UnetConfig config() {
        return config;
    }

    public Precision precision() {
        return precision;
    }

    /** Where the weights came from (a {@link MetaParams} lists every key and shape). */
    public Params params() {
        return params;
    }

    /** Every Linear and Conv2d, in module order (what LoRA networks wrap). */
    public List<AdaptableLayer> layers() {
        return params.layers();
    }

    /** Module path → sgm class name ({@code ResBlock}, {@code SpatialTransformer}, {@code Downsample}, ...). */
    public Map<String, String> moduleClasses() {
        return Collections.unmodifiableMap(params.moduleClasses());
    }
}
