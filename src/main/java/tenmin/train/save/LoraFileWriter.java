package tenmin.train.save;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;

/**
 * Writes a trained LoRA the way kohya + LyCORIS save it (trainer-spec §9.2): every tensor (alpha
 * included) in the save precision, the training metadata, and {@code sshs_model_hash} over the stored
 * bytes; atomically (temporary file, then rename).
 */
public final class LoraFileWriter {
    private LoraFileWriter() {
    }

    /** kohya's {@code --save_precision} names: {@code float}, {@code fp16}, {@code bf16}. */
    public static StDType dtypeOf(String savePrecision) {
        return switch (savePrecision.toLowerCase(Locale.ROOT)) {
            case "float", "fp32" -> StDType.F32;
            case "fp16" -> StDType.F16;
            case "bf16" -> StDType.BF16;
            default -> throw new IllegalArgumentException("save precision " + savePrecision);
        };
    }

    /**
     * @param target    the file ({@link OutputNames})
     * @param stateDict tensors in state-dict order (TE1, TE2, U-Net modules; alpha, lora_up, lora_down each)
     * @param dtype     stored dtype
     * @param metadata  ss_* and modelspec entries, or null for {@code --no_metadata}
     * @return the metadata written (with {@code sshs_model_hash}), empty when none
     */
    public static Map<String, String> write(Path target, List<StateTensor> stateDict, StDType dtype,
                                            Map<String, String> metadata) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter();
        Map<String, String> meta = new LinkedHashMap<>();
        if (metadata != null) {
            meta.putAll(metadata);
            meta.put("sshs_model_hash", ModelHashes.sshsModelHash(stateDict, dtype));
            w.metadata(meta);
        }
        for (StateTensor t : stateDict) {
            w.addFloats(t.name(), dtype, t.shape(), t.values());
        }
        w.write(target);
        return meta;
    }
}
