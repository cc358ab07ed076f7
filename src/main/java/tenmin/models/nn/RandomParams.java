package tenmin.models.nn;

import java.nio.charset.StandardCharsets;

import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Seeded random weights for models built in memory (tests, benchmarks, GPU-versus-CPU parity), with
 * the fixtures' scales so activations stay O(1): matrices and kernels N(0,1)/sqrt(fan_in), biases
 * 0.05·N(0,1), 1-D {@code weight}s (norm gains) 1 + 0.1·N(0,1), other tensors (embeddings) 0.2·N(0,1).
 * Each tensor's values depend only on the seed and its key, not on construction order, so the same
 * seed gives the same model on every backend.
 */
public final class RandomParams extends Params {
    private final Scope scope;
    private final Storage storage;
    private final long seed;

    private RandomParams(Root root, String path, Scope scope, Storage storage, long seed) {
        super(root, path);
        this.scope = scope;
        this.storage = storage;
        this.seed = seed;
    }

    public static RandomParams of(String keyPrefix, Scope scope, DType dtype, long seed) {
        return of(keyPrefix, scope, Storage.of(dtype), seed);
    }

    /** Random weights kept as {@code storage} says (fp8 weights: the random values rounded to fp8, via its dtype). */
    public static RandomParams of(String keyPrefix, Scope scope, Storage storage, long seed) {
        return new RandomParams(new Root(keyPrefix), "", scope, storage, seed);
    }

    @Override
    protected Params view(Root root, String path) {
        return new RandomParams(root, path, scope, storage, seed);
    }

    @Override
    public Tensor get(String name, Shape shape) {
        return random(name, shape, storage.stored());
    }

    @Override
    public Tensor getEmbedding(String name, Shape shape) {
        return random(name, shape, storage.compute());
    }

    private Tensor random(String name, Shape shape, DType dtype) {
        String key = key(name);
        double scale;
        double shift = 0;
        if (name.equals("bias")) {
            scale = 0.05;
        } else if (name.endsWith("weight") && shape.rank() >= 2) {
            long fanIn = shape.numel() / shape.dim(0);
            scale = 1 / Math.sqrt(fanIn);
        } else if (name.endsWith("weight") && shape.rank() == 1) {
            scale = 0.1;
            shift = 1;
        } else {
            scale = 0.2;
        }
        Generator gen = new Generator(seed ^ stableHash(key));
        try (Scope tmp = scope.child("random " + key)) {
            Tensor unit = tmp.randn(shape, DType.F32, gen);
            Tensor scaled = scope.backend().affine(tmp, unit, scale, shift);
            if (dtype == DType.F8_E4M3 && storage.via() != DType.F32) {
                scaled = scope.backend().cast(tmp, scaled, storage.via());       // the reference's first rounding
            }
            Tensor out = scope.backend().cast(scope, scaled, dtype);
            return out.named(key);
        }
    }

    /** FNV-1a over the key's UTF-8 bytes: stable across runs and JVMs (unlike String.hashCode's spec-free use). */
    static long stableHash(String key) {
        long h = 0xcbf29ce484222325L;
        for (byte b : key.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        return h;
    }

    @Override
    public Storage storage() {
        return storage;
    }

    @Override
    public Scope scope() {
        return scope;
    }
}
