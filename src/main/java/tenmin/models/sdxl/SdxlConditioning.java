package tenmin.models.sdxl;

import java.util.ArrayList;
import java.util.List;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * SDXL's vector conditioning (trainer-spec §4.3; sgm {@code ConcatTimestepEmbedderND}, kohya
 * {@code sdxl_train_util.get_size_embeddings}):
 * {@code y = cat(pooled, E(orig_h), E(orig_w), E(crop_top), E(crop_left), E(target_h), E(target_w))}
 * with {@code E(v) = [cos(v·f_k), sin(v·f_k)]}, {@code f_k = exp(-ln(10000)·k/128)}, k = 0..127 (256 wide,
 * cos first). On SDXL: 1280 + 6·256 = 2816 = the U-Net's {@code adm_in_channels}.
 */
public final class SdxlConditioning {
    /** Width of one size embedding. */
    public static final int SIZE_EMBED_DIM = 256;
    /** Number of size values per image. */
    public static final int SIZE_VALUES = 6;

    private SdxlConditioning() {
    }

    /**
     * Uploads the size conditions of a batch, one row of six pixel values per image in the order
     * (orig_h, orig_w, crop_top, crop_left, target_h, target_w) (e.g. {@code SizeConditioning.values()} of
     * the dataset), as an (N, 6) F32 tensor in {@code scope}.
     */
    public static Tensor sizeTensor(Scope scope, List<int[]> rows) {
        float[] data = new float[rows.size() * SIZE_VALUES];
        for (int i = 0; i < rows.size(); i++) {
            int[] row = rows.get(i);
            if (row.length != SIZE_VALUES) {
                throw new IllegalArgumentException("size conditioning row " + i + " has " + row.length + " values, expected 6");
            }
            for (int j = 0; j < SIZE_VALUES; j++) {
                data[i * SIZE_VALUES + j] = row[j];
            }
        }
        return scope.fromHost(data, rows.size(), SIZE_VALUES);
    }

    /**
     * The six size embeddings of {@code sizes} (N, 6) (I64 or floating; no gradient) → (N, 1536) F32.
     */
    public static Tensor sizeEmbedding(Functional f, Tensor sizes) {
        if (sizes.rank() != 2 || sizes.dim(1) != SIZE_VALUES) {
            throw new IllegalArgumentException("size conditioning " + sizes.describe() + ": expected (N, 6)");
        }
        List<Tensor> parts = new ArrayList<>();
        for (int i = 0; i < SIZE_VALUES; i++) {
            Tensor column = f.reshape(f.narrow(sizes, 1, i, 1), sizes.dim(0));   // (N)
            parts.add(f.sinusoidalEmbedding(column, SIZE_EMBED_DIM));             // (N, 256) F32
        }
        return f.cat(parts, 1);                                                   // (N, 1536)
    }

    /**
     * {@code y = cat(pooled, sizeEmbedding(sizes))} → (N, P + 1536) F32. The pooled text embedding
     * (N, P) may carry gradient (a trained text encoder 2); it is widened to F32 as PyTorch's {@code cat}
     * promotes it, and the U-Net casts y to its compute dtype.
     */
    public static Tensor vector(Functional f, Tensor pooled, Tensor sizes) {
        if (pooled.rank() != 2 || pooled.dim(0) != sizes.dim(0)) {
            throw new IllegalArgumentException("pooled embedding " + pooled.describe() + " does not match size conditioning "
                    + sizes.describe());
        }
        return f.cat(1, f.cast(pooled, DType.F32), sizeEmbedding(f, sizes));
    }
}
