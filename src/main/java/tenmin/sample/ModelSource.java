package tenmin.sample;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.formats.Hashes;
import tenmin.formats.SafetensorsFile;
import tenmin.lora.LoraFile;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextConfig;
import tenmin.models.sdxl.UnetConfig;

/**
 * Where the model to sample with comes from: a single-file SDXL checkpoint (SAI layout; another size with a
 * fixtures-style {@code config.json}), or seeded random weights of a named size for tests, demos and
 * benchmarks ({@link #randomConfig}).
 */
public sealed interface ModelSource {

    /** The sizes of the four networks. */
    SdxlConfig config();

    /** Loads (or builds) the networks, weights owned by child scopes of {@code scope}. */
    SdxlModels load(Scope scope, SdxlDtypes dtypes);

    /**
     * The model as image metadata names it. {@code hash}: compute A1111's short hash (first 10 hex digits of
     * the checkpoint file's SHA-256; reads the whole file once).
     */
    SdxlPipeline.ModelId id(boolean hash, Reporter reporter);

    /** A checkpoint file, with the VAE of another file ({@code vae}, LDM layout) or its own (null). */
    record Checkpoint(Path file, SdxlConfig config, Path vae) implements ModelSource {
        /**
         * Checks that {@code file} exists and is not a LoRA; {@code configJson} (null = SDXL base) gives other
         * sizes.
         */
        public static Checkpoint of(Path file, Path configJson) {
            return of(file, configJson, null);
        }

        /** {@link #of(Path, Path)} with the VAE of {@code vae} (null: the checkpoint's). */
        public static Checkpoint of(Path file, Path configJson, Path vae) {
            if (vae != null && !Files.isRegularFile(vae)) {
                throw new InputException("--vae " + vae + ": no such file (a single-file VAE in the LDM layout)");
            }
            if (!Files.isRegularFile(file)) {
                throw new InputException("--model " + file + ": no such file");
            }
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                if (LoraFile.looksLikeLora(f)) {
                    throw new InputException("--model " + file + ": this is a LoRA, not a checkpoint (give it with --lora)");
                }
            }
            if (configJson != null && !Files.isRegularFile(configJson)) {
                throw new InputException("--model-config " + configJson + ": no such file");
            }
            return new Checkpoint(file, configJson == null ? SdxlConfig.sdxl() : SdxlConfig.fromConfigFile(configJson),
                    vae);
        }

        @Override
        public SdxlModels load(Scope scope, SdxlDtypes dtypes) {
            return SdxlModels.load(file, vae, config, scope, dtypes);
        }

        @Override
        public SdxlPipeline.ModelId id(boolean hash, Reporter reporter) {
            String name = file.getFileName().toString();
            int dot = name.lastIndexOf('.');
            name = dot > 0 ? name.substring(0, dot) : name;
            return new SdxlPipeline.ModelId(name, hash ? fileHash(file, reporter).substring(0, 10) : null,
                    vae == null ? null : vae.getFileName().toString(),
                    vae == null || !hash ? null : fileHash(vae, reporter).substring(0, 10));
        }
    }

    /** Seeded random weights (every backend builds the same model from the same seed). */
    record Random(String size, SdxlConfig config, long seed) implements ModelSource {
        @Override
        public SdxlModels load(Scope scope, SdxlDtypes dtypes) {
            return SdxlModels.random(config, scope, dtypes, seed);
        }

        @Override
        public SdxlPipeline.ModelId id(boolean hash, Reporter reporter) {
            return new SdxlPipeline.ModelId("random-" + size + "-" + seed, null);
        }
    }

    /** The sizes {@link #randomConfig} knows. */
    List<String> RANDOM_SIZES = List.of("tiny", "small", "sdxl");

    /**
     * A named configuration for random weights: {@code tiny} (the fixtures' tiny-a: 32-channel U-Net, 32-wide
     * 3-layer text encoders, about 15 M parameters), {@code small} (64-channel U-Net with SDXL's transformer
     * depths 0/1/2 and 32-channel heads, 64-wide 4-layer text encoders, the tiny VAE) or {@code sdxl} (the real
     * architecture, 3.5 G parameters: the GPU benchmark).
     */
    static SdxlConfig randomConfig(String size) {
        return switch (size.toLowerCase(Locale.ROOT)) {
            case "tiny" -> SdxlConfig.tiny();
            case "small" -> {
                SdxlConfig tiny = SdxlConfig.tiny();
                UnetConfig unet = new UnetConfig(4, 4, 64, List.of(1, 2, 4), 2, List.of(4, 2), List.of(0, 1, 2), 2, 32,
                        128, 64 + 1536);
                ClipTextConfig te1 = new ClipTextConfig(ClipTextConfig.SDXL_TE1.vocabSize(), 64, 4, 4, 256, 77,
                        ClipTextConfig.Activation.QUICK_GELU, 1e-5, 0);
                ClipTextConfig te2 = new ClipTextConfig(ClipTextConfig.SDXL_TE2.vocabSize(), 64, 4, 4, 256, 77,
                        ClipTextConfig.Activation.GELU, 1e-5, 64);
                yield new SdxlConfig(unet, te1, te2, tiny.vae());
            }
            case "sdxl" -> SdxlConfig.sdxl();
            default -> throw new InputException("--random-model " + size + ": expected one of " + String.join(", ", RANDOM_SIZES));
        };
    }

    /** Bytes hashed per chunk; each chunk's pages are released after hashing (multi-GB files). */
    long HASH_CHUNK_BYTES = 64L << 20;

    /** SHA-256 (hex) of a whole file, read through a memory mapping chunk by chunk. */
    static String fileHash(Path file, Reporter reporter) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            MemorySegment all = f.fileSegment();
            MessageDigest digest = Hashes.sha256();
            try (Reporter.Progress progress = reporter.progress("model hash", all.byteSize())) {
                for (long off = 0; off < all.byteSize(); off += HASH_CHUNK_BYTES) {
                    MemorySegment chunk = all.asSlice(off, Math.min(HASH_CHUNK_BYTES, all.byteSize() - off));
                    Hashes.update(digest, chunk);
                    if (chunk.isMapped()) {
                        chunk.unload();
                    }
                    progress.advance(chunk.byteSize());
                }
            }
            return HexFormat.of().formatHex(digest.digest());
        }
    }
}
