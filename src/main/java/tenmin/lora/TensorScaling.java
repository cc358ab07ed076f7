package tenmin.lora;

import java.io.IOException;
import java.io.OutputStream;

import tenmin.core.InputException;
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
}
