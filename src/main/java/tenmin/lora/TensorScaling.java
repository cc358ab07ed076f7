package tenmin.lora;

import java.io.IOException;
import java.io.OutputStream;

import tenmin.core.InputException;
import tenmin.core.PyFormat;
import tenmin.core.Reporter;
import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;

/**
 * Multiplies a stored tensor by a scalar while copying it into a {@link SafetensorsWriter}, in the
 * tensor's own dtype and shape.
 */
public final class TensorScaling {
    private TensorScaling() {
    }

    /** How the product is rounded back to the tensor's dtype. */
    public enum Rounding {
        /** {@code x·w} computed in double, then rounded to the dtype (the accurate default). */
        ACCURATE,
        /**
         * numpy's rule for {@code array * python_float} (chop_blocks c2/c3, postprocess-spec §3.4 note 3):
         * the scalar is first rounded to the array's dtype, the product is formed in fp32 and rounded once:
         * {@code fp16(fp32(x) · fp32(fp16(w)))}.
         */
        NUMPY
    }

    /** Adds tensor {@code key} of {@code from}, multiplied by {@code w}, to {@code to} under the same name. */
    public static void addScaled(SafetensorsWriter to, SafetensorsFile from, String key, double w, Rounding rounding) {
        TensorInfo t = from.info(key);
        StDType dtype = t.dtype();
        if (!dtype.isFloat()) {
            throw new InputException(from.path() + ": tensor \"" + key + "\" is " + dtype + " and cannot be scaled");
        }
        to.add(key, dtype, t.shape(), out -> writeScaled(out, from, key, dtype, w, rounding));
    }

    private static void writeScaled(OutputStream out, SafetensorsFile from, String key, StDType dtype, double w,
                                    Rounding rounding) throws IOException {
        float[] v = from.readFloats(key);
        if (rounding == Rounding.NUMPY) {
            float ws = dtype == StDType.F64 ? (float) w : Half.roundTo((float) w, dtype);
            for (int i = 0; i < v.length; i++) {
                v[i] = v[i] * ws;
            }
        } else {
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (v[i] * w);
            }
        }
        SafetensorsWriter.writeFloats(out, v, dtype); // rounds to F16/BF16 with round-to-nearest-even
        from.release(key);
    }

    /**
     * Adds module {@code m} of {@code lora} with its delta scaled by {@code r}: {@code lora_up.weight} is
     * multiplied by r (accurate rounding), alpha, lora_down and dora_scale are copied unchanged. Throws
     * {@link InputException} for modules that are not usable LoRA/LoCon modules. For DoRA modules a warning
     * says that the result is not linear in r (the loader renormalises the magnitude).
     */
    public static void addScaledModule(SafetensorsWriter writer, LoraFile lora, LoraModule m, double r, Reporter reporter) {
        if (!m.isSupported()) {
            throw new InputException(lora.path() + ": cannot scale module " + m.name() + " by " + PyFormat.repr(r)
                    + ": " + m.problem() + " (only weights 0 and 1 copy such modules)");
        }
        if (m.hasDora()) {
            reporter.log(Reporter.Level.WARNING, "warning: " + m.name() + " is a DoRA module: scaling lora_up changes"
                    + " its direction and the loader renormalises the magnitude, so its effect is not linear in the weight");
        }
        for (String k : m.tensorKeys()) {
            if (k.equals(m.upKey())) {
                addScaled(writer, lora.file(), k, r, Rounding.ACCURATE);
            } else {
                writer.copy(lora.file(), k);
            }
        }
    }
}
