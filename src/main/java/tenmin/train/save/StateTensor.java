package tenmin.train.save;

import java.util.Arrays;

/**
 * A named fp32 tensor with its shape (LoRA weights in a LoRA file or a training state).
 *
 * @param name   key, e.g. {@code lora_unet_..._to_q.lora_down.weight}
 * @param shape  dimensions ({@code []} for a scalar such as {@code alpha})
 * @param values row-major values (not copied)
 */
public record StateTensor(String name, long[] shape, float[] values) {
    public StateTensor {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " has " + n
                    + " elements, values " + values.length);
        }
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }
}
