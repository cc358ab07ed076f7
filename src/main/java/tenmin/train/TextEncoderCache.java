package tenmin.train;

import java.util.ArrayList;
import java.util.List;

import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.train.data.CaptionOptions;
import tenmin.train.data.Captions;
import tenmin.train.data.DreamBoothDataset;

/**
 * {@code --cache_text_encoder_outputs}: every image's text conditioning (the context and text encoder 2's pooled
 * vector), computed once before training when the text encoders are frozen ({@code --network_train_unet_only}) and
 * the captions do not change between draws (no shuffling, no dropout). A micro-batch then uploads its rows instead
 * of running both encoders; the values are the encoders' own (kept in the dtype they produced), so the run is the
 * same as without the cache. Each caption is encoded as a draw sees it (prefix, suffix, secondary separator), where
 * the reference's cache encodes the caption file's text as it is (its prefix and suffix then do nothing); and
 * {@code --caption_dropout_every_n_epochs}, which the reference's check lets pass and its cache then ignores, is
 * refused.
 */
public final class TextEncoderCache {
    /** Captions encoded per call while caching. */
    private static final int BATCH = 8;

    private final float[][] context;
    private final float[][] pooled;
    private final Shape contextRow;     // (T, C)
    private final int projection;
    private final DType contextType;
    private final DType pooledType;

    private TextEncoderCache(float[][] context, float[][] pooled, Shape contextRow, int projection, DType contextType,
                             DType pooledType) {
        this.context = context;
        this.pooled = pooled;
        this.contextRow = contextRow;
        this.projection = projection;
        this.contextType = contextType;
        this.pooledType = pooledType;
    }

    /** Encodes every image's caption of {@code data} (processed as {@code cfg} says) with {@code models}' encoders. */
    static TextEncoderCache build(SdxlModels models, TrainingData data, TrainConfig cfg, PooledProjection projection,
                                  Scope parent, Reporter.Progress progress) {
        int n = data.imageCount();
        float[][] context = new float[n][];
        float[][] pooled = new float[n][];
        Shape row = null;
        int p = 0;
        DType contextType = null;
        DType pooledType = null;
        Rng unused = new Rng(0);                    // cacheable captions draw nothing
        for (int from = 0; from < n; from += BATCH) {
            int to = Math.min(n, from + BATCH);
            List<String> captions = new ArrayList<>();
            List<int[]> sizes = new ArrayList<>();
            for (int i = from; i < to; i++) {
                DreamBoothDataset.Item it = data.item(i);
                CaptionOptions own = data.dataset().subsets().get(it.subset()).captions();
                CaptionOptions o = own != null ? own : cfg.data().captions();
                if (!o.sameEveryDraw()) {
                    throw new IllegalStateException("captions of " + it.image() + " change between draws");
                }
                captions.add(Captions.process(it.caption(), o, 1, unused));
                sizes.add(new int[6]);
            }
            try (Scope step = parent.child("text encoder cache")) {
                SdxlModels.Conditioning c = models.condition(Functional.inference(step), captions, sizes, projection,
                        false, cfg.data().maxTokenLength());
                row = Shape.of(c.context().shape().dim(1), c.context().shape().dim(2));
                p = c.pooled().shape().dim(1);
                contextType = c.context().dtype();
                pooledType = c.pooled().dtype();
                float[] ctx = c.context().toHost();
                float[] pool = c.pooled().toHost();
                int per = (int) row.numel();
                for (int i = from; i < to; i++) {
                    context[i] = java.util.Arrays.copyOfRange(ctx, (i - from) * per, (i - from + 1) * per);
                    pooled[i] = java.util.Arrays.copyOfRange(pool, (i - from) * p, (i - from + 1) * p);
                }
            }
            progress.advance(to - from);
        }
        return new TextEncoderCache(context, pooled, row, p, contextType, pooledType);
    }

    /** Host bytes held. */
    long bytes() {
        return 4L * context.length * (contextRow.numel() + projection);
    }

    /** The cached rows of the images {@code items} of a micro-batch. */
    Rows rows(int[] items) {
        int per = (int) contextRow.numel();
        float[] ctx = new float[items.length * per];
        float[] pool = new float[items.length * projection];
        for (int b = 0; b < items.length; b++) {
            System.arraycopy(context[items[b]], 0, ctx, b * per, per);
            System.arraycopy(pooled[items[b]], 0, pool, b * projection, projection);
        }
        return new Rows(ctx, pool, contextRow, projection, contextType, pooledType);
    }

    /**
     * The text conditioning of one micro-batch from the cache.
     *
     * @param context (N, T, C) row-major
     * @param pooled  (N, P)
     */
    public record Rows(float[] context, float[] pooled, Shape contextRow, int projection, DType contextType,
                       DType pooledType) {

        /** Uploads the rows and adds the size conditioning, as {@link SdxlModels#condition} would give them. */
        SdxlModels.Conditioning condition(Functional f, List<int[]> sizes) {
            int n = sizes.size();
            Scope s = f.scope();
            Tensor ctx = s.fromHost(context, Shape.of(n, contextRow.dim(0), contextRow.dim(1)), contextType);
            Tensor pool = s.fromHost(pooled, Shape.of(n, projection), pooledType);
            Tensor y = SdxlConditioning.vector(f, pool, SdxlConditioning.sizeTensor(s, sizes));
            return new SdxlModels.Conditioning(ctx, pool, y);
        }
    }
}
